"""`flowctl cancel` and `flowctl terminate`, of one workflow or of all a query selects; `retry` and `reset`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowctl.cli import batch, render
from flowctl.cli.app import OPERATE, app, fail, state
from flowctl.cli.options import ReasonOpt, TimeoutOpt, WorkflowIdArg, wait_timeout
from flowctl.errors import UsageError

if TYPE_CHECKING:
    from temporalio.client import Client

    from flowctl.ops.runs import Outcome

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


@app.command(
    rich_help_panel=OPERATE,
    epilog="Examples: flowctl retry order-A-1001;  flowctl retry order-A-1001 --wait -o json\n\n"
    "A failed, terminated or timed-out workflow starts again with the input its last run was started with. "
    "Its steps keep their idempotency keys: a step already done is answered as it was, none is done twice. "
    "Exit 4 for a workflow still running, completed or cancelled.",
)
def retry(
    ctx: typer.Context,
    workflow_id: WorkflowIdArg,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the new run's result; exit code reflects it")] = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Start a failed, terminated or timed-out workflow again with its original input."""
    from flowctl.ops import resets, runs

    app_ = state(ctx)
    wait_for = wait_timeout(timeout, wait)

    async def action(client: Client) -> tuple[dict[str, Any], Outcome | None]:
        retried = await resets.retry(client, workflow_id)
        app_.doing = f"waiting for {workflow_id}, which was started again and goes on"
        info = retried.as_dict()
        if not wait:
            return info, None
        app_.output.info(render.RETRIED.format(**info))
        return info, await runs.wait_result(client, workflow_id, timeout=wait_for, patience=app_.patience())

    app_.doing = f"retrying {workflow_id}: it may have started again or not ('flowctl describe {workflow_id}' says)"
    info, outcome = app_.run(action)
    if outcome is None:
        app_.output.data(info, lambda out: out.print(render.RETRIED.format(**info), markup=False))
        return
    info.update(outcome.as_dict())
    app_.output.data(info, lambda out: render.outcome(out, outcome))
    fail(outcome.code)


@app.command(
    rich_help_panel=OPERATE,
    epilog="Examples: flowctl reset order-A-1001 --to charge_payment --dry-run;  "
    "flowctl reset order-A-1001 --to last-task --reason 'fixed the fraud-screen bug'\n\n"
    "The run is replayed up to the point and goes on from there in a new run; signals and updates sent "
    "after the point are sent again. The steps after the point are taken again under their same "
    "idempotency keys, so each is answered as it was and none is done twice; a step in flight is one call "
    "with the new run's; should the new run end unsuccessfully, it undoes every step, the old run's too. "
    "A run that began compensating or was asked to cancel is not reset (exit 4).",
)
def reset(
    ctx: typer.Context,
    workflow_id: WorkflowIdArg,
    to: Annotated[
        str,
        typer.Option("--to", metavar="last-task|STEP", help="go back to the last workflow task, or to before STEP"),
    ],
    reason: ReasonOpt = "",
    dry_run: batch.DryRunOpt = False,
) -> None:
    """Replay a workflow to a point (its last task, or before a step) and let it go on from there."""
    from flowctl.ops import resets

    app_ = state(ctx)
    if not dry_run and not reason.strip():
        raise UsageError("--reason is required for reset", hint="say why, e.g. --reason 'fixed the charge bug'")

    async def action(client: Client) -> dict[str, Any]:
        plan = await resets.plan(client, workflow_id, to)
        info = plan.as_dict()
        if plan.updates_after:
            app_.output.warn(
                f"{len(plan.updates_after)} update(s) taken after that point ({', '.join(plan.updates_after)}) "
                "reach the new run before it waits for them again and are refused: send them again once it "
                "waits ('flowctl approvals')"
            )
        if plan.signals_after:
            app_.output.warn(
                f"{len(plan.signals_after)} signal(s) sent after that point ({', '.join(plan.signals_after)}) are "
                "sent again to the new run and act there as they did (a review decision decides again)"
            )
        if dry_run:
            return {**info, "dry_run": True}
        app_.doing = f"resetting {workflow_id}: it may have been reset or not ('flowctl describe {workflow_id}' says)"
        new_run = await resets.reset(client, plan, reason)
        if plan.cancel_sent_on:
            app_.output.warn("a cancel reached the old run meanwhile: it was sent to the new run too")
        return {**plan.as_dict(), "new_run_id": new_run}

    app_.doing = f"reading {workflow_id}'s history; nothing was changed"
    info = app_.run(action)
    app_.output.data(info, lambda out: render.reset(out, info))
