"""`flowctl signal` and `flowctl query`: messages checked against the workflow's kind first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowctl.cli.app import app, state
from flowctl.cli.options import InputOpt, SetOpt, WorkflowIdArg, complete_message

if TYPE_CHECKING:
    from temporalio.client import Client


def _signal_names(ctx: typer.Context, incomplete: str) -> list[str]:
    return complete_message("signal", ctx, incomplete)


def _query_names(ctx: typer.Context, incomplete: str) -> list[str]:
    return complete_message("query", ctx, incomplete)


@app.command(epilog="Example: flowctl signal order-A-1001 review --set decision=approve --set reviewer=maria")
def signal(
    ctx: typer.Context,
    workflow_id: WorkflowIdArg,
    name: Annotated[str, typer.Argument(help="signal name, e.g. review", autocompletion=_signal_names)],
    input: InputOpt = None,  # noqa: A002 - the flag is --input
    set_: SetOpt = None,
) -> None:
    """Send a signal, validated against the signal model of the workflow's kind."""
    from flowctl import inputs, ops

    app_ = state(ctx)
    raw = inputs.read_json_input(input) if input is not None else None  # malformed JSON: exit 2 before any RPC

    async def action(client: Client) -> dict[str, Any]:
        payload = await ops.message_payload(client, workflow_id, "signal", name, raw, set_ or [])
        await ops.signal(client, workflow_id, name, payload)
        return {"workflow_id": workflow_id, "signal": name, "sent": True}

    result = app_.run(action)
    app_.output.data(result, lambda out: out.print(f"signal {name!r} sent to {workflow_id}", markup=False))


@app.command(epilog="Example: flowctl query order-A-1001 status -o json")
def query(
    ctx: typer.Context,
    workflow_id: WorkflowIdArg,
    name: Annotated[str, typer.Argument(help="query name", autocompletion=_query_names)] = "status",
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="how long a worker has to answer (default 15s)", show_default=False)
    ] = None,
) -> None:
    """Ask a workflow a query (default: status) and print its answer; a worker must be running."""
    from flowctl import catalog, inputs, ops

    app_ = state(ctx)
    wait_for = inputs.parse_duration(timeout, field="--timeout") if timeout else ops.QUERY_TIMEOUT

    async def action(client: Client) -> Any:
        info = await ops.describe(client, workflow_id)
        kind = catalog.for_workflow_type(info["workflow_type"])
        if kind is not None:
            catalog.message(kind, "query", name)
        return await ops.query(client, workflow_id, name, timeout=wait_for, task_queue=info["task_queue"])

    app_.output.data(app_.run(action))
