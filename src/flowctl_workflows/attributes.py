"""The search attributes every kind keeps current, and the waits they name: one home for the
workflows, the CLI and the server setup (no imports, so `--help` and completion stay light)."""

KIND = "FlowKind"
STATUS = "FlowStatus"
WAITING_FOR = "FlowWaitingFor"  # a WAITS tag, while a human decision is due
WAITING_SINCE = "FlowWaitingSince"
APPROVERS = "FlowApprovers"  # who may decide, where the kind names them

# Each attribute's type, as the embedded server registers it at start.
TYPES: dict[str, str] = {
    KIND: "Keyword",
    STATUS: "Keyword",
    WAITING_FOR: "Keyword",
    WAITING_SINCE: "Datetime",
    APPROVERS: "KeywordList",
}

# What a workflow waits for a person for (its WAITING_FOR tag), as `flowctl approvals` says it.
APPROVAL, REVIEW, VERIFICATION = "approval", "review", "verification"
WAITS: dict[str, str] = {
    APPROVAL: "approval decision",
    REVIEW: "fraud review decision",
    VERIFICATION: "email verification",
}
