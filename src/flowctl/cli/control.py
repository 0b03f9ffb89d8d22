"""`flowctl cancel` and `flowctl terminate`, of one workflow or of all a query selects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from flowctl.cli import batch
from flowctl.cli.app import OPERATE, app, state
from flowctl.cli.options import ReasonOpt

if TYPE_CHECKING:
    from temporalio.client import Client

OptionalIdArg = Annotated[str | None, typer.Argument(help="workflow id (or use --query)", show_default=False)]


@app.command(
    rich_help_panel=OPERATE,
    epilog="Examples: flowctl cancel order-A-1001 --reason 'customer changed their mind';  "
    "flowctl cancel --query \"FlowKind = 'order' AND FlowStatus = 'awaiting_review'\" --dry-run",
)
def cancel(
    ctx: typer.Context,
    workflow_id: OptionalIdArg = None,
    reason: ReasonOpt = "",
    query: batch.QueryOpt = None,
    dry_run: batch.DryRunOpt = False,
    yes: batch.YesOpt = False,
    limit: batch.LimitOpt = 1000,
) -> None:
    """Ask running workflows to cancel; sagas run their compensations first."""
    from flowctl.ops import runs

    batch.target(workflow_id, query)
    app_ = state(ctx)

    async def one(client: Client, wid: str) -> None:
        await runs.cancel(client, wid, reason)

    batch.dispatch(
        app_, "cancel", workflow_id, query, one,
        done={"cancel_requested": True}, said=f"cancellation requested for {workflow_id}",
        dry_run=dry_run, yes=yes, limit=limit,
    )  # fmt: skip


@app.command(
    rich_help_panel=OPERATE,
    epilog="Examples: flowctl terminate order-A-1001 --reason 'stuck on a bad deploy';  "
    "flowctl terminate --query \"WorkflowType = 'Order'\" --reason cleanup --yes",
)
def terminate(
    ctx: typer.Context,
    workflow_id: OptionalIdArg = None,
    reason: ReasonOpt = "",
    query: batch.QueryOpt = None,
    dry_run: batch.DryRunOpt = False,
    yes: batch.YesOpt = False,
    limit: batch.LimitOpt = 1000,
) -> None:
    """Stop running workflows at once, without compensation (needs --reason)."""
    from flowctl.errors import UsageError
    from flowctl.ops import runs

    batch.target(workflow_id, query)
    if not reason.strip():
        raise UsageError("--reason is required for terminate", hint="say why, e.g. --reason 'stuck on a bad deploy'")
    app_ = state(ctx)

    async def one(client: Client, wid: str) -> None:
        await runs.terminate(client, wid, reason)

    batch.dispatch(
        app_, "terminate", workflow_id, query, one,
        done={"terminated": True}, said=f"terminated {workflow_id}",
        dry_run=dry_run, yes=yes, limit=limit,
    )  # fmt: skip
