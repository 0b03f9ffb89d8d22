"""`flowctl cancel` and `flowctl terminate`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from flowctl.cli.app import app, state
from flowctl.cli.options import ReasonOpt, WorkflowIdArg

if TYPE_CHECKING:
    from temporalio.client import Client


@app.command(epilog="Example: flowctl cancel order-A-1001 --reason 'customer changed their mind'")
def cancel(ctx: typer.Context, workflow_id: WorkflowIdArg, reason: ReasonOpt = "") -> None:
    """Ask a running workflow to cancel; sagas run their compensations first."""
    from flowctl import ops

    app_ = state(ctx)

    async def action(client: Client) -> None:
        await ops.cancel(client, workflow_id, reason)

    app_.run(action)
    app_.output.data(
        {"workflow_id": workflow_id, "cancel_requested": True},
        lambda out: out.print(f"cancellation requested for {workflow_id}", markup=False),
    )


@app.command(epilog="Example: flowctl terminate order-A-1001 --reason 'stuck on a bad deploy'")
def terminate(
    ctx: typer.Context,
    workflow_id: WorkflowIdArg,
    reason: ReasonOpt = "",
) -> None:
    """Stop a running workflow at once, without compensation (needs --reason)."""
    from flowctl import ops
    from flowctl.errors import UsageError

    if not reason.strip():
        raise UsageError("--reason is required for terminate", hint="say why, e.g. --reason 'stuck on a bad deploy'")
    app_ = state(ctx)

    async def action(client: Client) -> None:
        await ops.terminate(client, workflow_id, reason)

    app_.run(action)
    app_.output.data(
        {"workflow_id": workflow_id, "terminated": True},
        lambda out: out.print(f"terminated {workflow_id}", markup=False),
    )
