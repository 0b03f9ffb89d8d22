"""Shared `Annotated` parameter aliases and the completions they offer (catalog only, no server)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer

from flowctl.output import UNSHOWABLE

# No whitespace, slash, backslash, control or invisible character: an id is shown in tables and URLs.
WORKFLOW_ID = re.compile(rf"[^\s/\\{UNSHOWABLE}]{{1,255}}")


def complete_kind(incomplete: str) -> list[str]:
    from flowctl import catalog

    return [name for name in catalog.names() if name.startswith(incomplete)]


def complete_message(group: str, ctx: typer.Context, incomplete: str) -> list[str]:
    """Message names for `flowctl signal|query|update ID <TAB>`, from the catalog alone.

    The kind is read off the workflow id by the kinds' id templates (`order-...` is an
    order); an id that matches none gets every kind's names.
    """
    from flowctl.catalog import GROUPS, kind_for_id
    from flowctl_workflows.kinds import KINDS

    kind = kind_for_id(str(ctx.params.get("workflow_id") or ""))
    kinds = [kind] if kind else list(KINDS.values())
    names = {m.name for k in kinds for m in getattr(k, GROUPS[group])}
    return sorted(n for n in names if n.startswith(incomplete))


KindArg = Annotated[
    str, typer.Argument(help="workflow kind: order, onboarding or approval", autocompletion=complete_kind)
]


def given_id(value: str) -> str:
    """A workflow id argument: anything another client may have used, but not nothing."""
    if not value.strip():
        raise typer.BadParameter("is empty: give a workflow id, e.g. order-A-1001")
    return value


WorkflowIdArg = Annotated[
    str, typer.Argument(help="workflow id, e.g. order-A-1001", show_default=False, callback=given_id)
]
InputOpt = Annotated[
    str | None,
    typer.Option(
        "-i",
        "--input",
        metavar="JSON",
        help="JSON input: inline, @file.json, or - for standard input",
        show_default=False,
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", metavar="KEY=VALUE", help="set one field: key=value (dotted keys reach nested fields); repeatable"
    ),
]
TimeoutOpt = Annotated[
    str | None,
    typer.Option(
        "--timeout",
        metavar="DURATION",
        help="how long to wait, e.g. 30s, 5m, 24h (default: until it ends; 0 looks once)",
        show_default=False,
    ),
]
DecisionTimeoutOpt = Annotated[
    str | None,
    typer.Option(
        "--timeout",
        metavar="DURATION",
        help="how long a worker has to confirm it (default 10s); past it, exit 21: sent, takes effect later",
        show_default=False,
    ),
]


def _run_id(value: str | None) -> str | None:
    import uuid

    if value is not None:
        try:
            uuid.UUID(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a run id (a UUID, as 'flowctl describe' shows)") from None
    return value


RunIdOpt = Annotated[
    str | None,
    typer.Option(
        "--run-id",
        metavar="RUN_ID",
        help="a given run of the workflow (default: its latest)",
        show_default=False,
        callback=_run_id,
    ),
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="why, recorded in the history")]


def wait_timeout(timeout: str | None, wait: bool) -> timedelta | None:
    """`--timeout` of a command whose waiting is `--wait`: refused without it, else parsed."""
    from flowctl import inputs
    from flowctl.errors import UsageError

    if timeout is not None and not wait:
        raise UsageError("--timeout is how long --wait waits: it needs --wait", hint="add --wait or drop --timeout")
    return inputs.parse_duration(timeout, field="--timeout") if timeout else None
