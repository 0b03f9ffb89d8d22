"""`flowctl update`, `approvals`, `approve` and `reject`: the human decisions workflows wait for."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowctl.cli import render
from flowctl.cli.app import DECIDE, SEND, app, state
from flowctl.cli.options import DecisionTimeoutOpt, InputOpt, SetOpt, WorkflowIdArg, complete_message

if TYPE_CHECKING:
    from temporalio.client import Client

    from flowctl.output import Output

AsOpt = Annotated[str, typer.Option("--as", help="who decides (must be one of the approvers)", show_default=False)]


def _update_names(ctx: typer.Context, incomplete: str) -> list[str]:
    return complete_message("update", ctx, incomplete)


@app.command(
    rich_help_panel=SEND,
    epilog="Example: flowctl update approval-PR-2001 decide --set approver=bob --set decision=approve",
)
def update(
    ctx: typer.Context,
    workflow_id: WorkflowIdArg,
    name: Annotated[str, typer.Argument(help="update name, e.g. decide", autocompletion=_update_names)],
    input: InputOpt = None,  # noqa: A002 - the flag is --input
    set_: SetOpt = None,
    timeout: DecisionTimeoutOpt = None,
) -> None:
    """Send an update, validated against the kind's update model; waits for and prints its result."""
    from flowctl import inputs
    from flowctl.ops import messages, runs

    app_ = state(ctx)
    raw = inputs.read_json_input(input) if input is not None else None  # malformed JSON: exit 2 before any RPC
    wait_for = inputs.parse_duration(timeout, field="--timeout") if timeout else messages.DECISION_TIMEOUT

    async def action(client: Client) -> Any:
        info = await runs.describe(client, workflow_id)
        payload = messages.payload_for(runs.kind_of(info), "update", name, raw, set_ or [])
        runs.refuse_closed(info)
        app_.doing = f"sending update {name!r} to {workflow_id}: it may have been taken or not ('flowctl query' says)"
        return await messages.update(
            client, workflow_id, name, payload, update_id=f"{name}-{uuid.uuid4()}",
            timeout=wait_for, task_queue=info.task_queue,
        )  # fmt: skip

    app_.output.data(app_.run(action))


@app.command(rich_help_panel=DECIDE, epilog="Examples: flowctl approvals;  flowctl approvals --approver bob -o json")
def approvals(
    ctx: typer.Context,
    approver: Annotated[
        str | None,
        typer.Option("--approver", help="only requests this person may still decide", show_default=False),
    ] = None,
) -> None:
    """List workflows waiting for a human decision: approvals, fraud reviews, email verifications."""
    from flowctl.errors import UsageError
    from flowctl.ops import visibility

    app_ = state(ctx)
    if approver is not None and not approver.strip():
        raise UsageError("--approver is empty", hint="name a person, e.g. --approver bob, or leave it out to list all")

    async def action(client: Client) -> list[dict[str, Any]]:
        return [row.as_dict() for row in await visibility.approvals(client, approver)]

    rows = app_.run(action)

    def text(out: Output) -> None:
        if not rows:
            out.print("nothing waits for a decision", markup=False)
            return
        shown = [
            {**row, "approvers": ", ".join(row["approvers"])}  # times as list shows them, with their zone
            for row in rows
        ]
        out.table(shown, ["workflow_id", "kind", "waiting_for", "since", "approvers"])
        out.info("decide with: flowctl approve|reject ID --as NAME [--comment C]")

    app_.output.data(rows, text)


def _decide(
    ctx: typer.Context, workflow_id: str, person: str, decision: str, comment: str, timeout: str | None
) -> None:
    """Send `decision` in the form the workflow's kind takes it, then print its new state.

    Within `timeout` a worker confirms it; past it, exit 21 says it was sent and takes effect
    when a worker runs (a signal is durable at once; an update is held by the server).
    """
    import time
    from datetime import timedelta

    from pydantic import ValidationError

    from flowctl import inputs
    from flowctl.errors import ConflictError, UsageError
    from flowctl.ops import messages, runs
    from flowctl_workflows.models import Decision
    from flowctl_workflows.models.approval import Vote
    from flowctl_workflows.models.onboarding import VerifyEmail

    app_ = state(ctx)
    if not person.strip():
        raise UsageError("--as must name who decides", hint="e.g. --as bob")
    if not person.isprintable():
        raise UsageError("--as must be a name on one line, without control characters", hint="e.g. --as bob")
    wait_for = inputs.parse_duration(timeout, field="--timeout") if timeout else messages.DECISION_TIMEOUT
    # Both payloads are checked before anything is sent: a name or comment too long is exit 2.
    flags = {"approver": "--as", "reviewer": "--as", "comment": "--comment"}
    try:
        vote = Vote(approver=person, decision=decision, comment=comment)
        review = Decision(decision=decision, reviewer=person, comment=comment)
    except ValidationError as err:
        wrong = "; ".join(f"{flags.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in err.errors())
        raise UsageError(f"invalid decision: {wrong}", hint="shorten it") from None

    from flowctl_workflows import attributes

    async def action(client: Client) -> Any:
        began = time.monotonic()
        info = await runs.require_running(client, workflow_id)
        kind = runs.kind_of(info)
        queue = info.task_queue
        waiting = info.search_attributes.get(attributes.WAITING_FOR)
        if not waiting:
            now = info.flow_status or "its first task has not run"
            raise ConflictError(f"workflow {workflow_id!r} is not waiting for a decision ({now})")

        app_.doing = f"sending the decision to {workflow_id}: it may have been sent or not ('flowctl query' says)"

        def left() -> timedelta:
            return max(timedelta(0), wait_for - timedelta(seconds=time.monotonic() - began))

        if kind.name == "approval":
            # The update answers with the state its handler left; a deciding vote hands over to
            # the run, which moves on in the same task, so the query after it is what is true now.
            await messages.update(
                client,
                workflow_id,
                "decide",
                vote,
                update_id=f"decide-{uuid.uuid4()}",
                timeout=left(),
                task_queue=queue,
            )
            what = f"{person}'s vote"
        elif kind.name == "order":
            await messages.signal(client, workflow_id, "review", review)
            what = f"{person}'s review"
        elif decision == "approve":
            await messages.signal(client, workflow_id, "verify-email", VerifyEmail(verified_by=person))
            what = f"{person}'s verification"
        else:
            raise UsageError(
                f"{workflow_id!r} waits for email verification, which cannot be rejected",
                hint=f"to stop the onboarding: flowctl cancel {workflow_id}",
            )
        app_.doing = f"waiting for a worker to apply {what}, sent to {workflow_id}: it takes effect when one does"
        return await messages.confirm(client, workflow_id, what, timeout=left(), task_queue=queue)

    new_state = app_.run(action)
    app_.output.data(
        {"workflow_id": workflow_id, "decision": decision, "by": person, "state": new_state},
        lambda out: render.decision(out, workflow_id, decision, person, new_state),
    )


@app.command(
    rich_help_panel=DECIDE, epilog="Example: flowctl approve approval-PR-2001 --as bob --comment 'within budget'"
)
def approve(
    ctx: typer.Context,
    workflow_id: WorkflowIdArg,
    person: AsOpt,
    comment: Annotated[str, typer.Option("--comment", help="why")] = "",
    timeout: DecisionTimeoutOpt = None,
) -> None:
    """Approve what a workflow waits for (an approval request, a fraud review, an email verification)."""
    _decide(ctx, workflow_id, person, "approve", comment, timeout)


@app.command(rich_help_panel=DECIDE, epilog="Example: flowctl reject approval-PR-2001 --as bob --comment 'over budget'")
def reject(
    ctx: typer.Context,
    workflow_id: WorkflowIdArg,
    person: AsOpt,
    comment: Annotated[str, typer.Option("--comment", help="why (required)", show_default=False)],
    timeout: DecisionTimeoutOpt = None,
) -> None:
    """Reject an approval request or a held order; the workflow runs its rejection path."""
    from flowctl.errors import UsageError

    if not comment.strip():
        raise UsageError("--comment must say why the request is rejected", hint="e.g. --comment 'over budget'")
    _decide(ctx, workflow_id, person, "reject", comment, timeout)
