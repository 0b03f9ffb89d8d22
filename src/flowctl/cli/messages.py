"""`flowctl signal` and `flowctl query`: messages checked against the workflow's kind first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowctl.cli import batch
from flowctl.cli.app import INSPECT, SEND, app, state
from flowctl.cli.options import InputOpt, SetOpt, WorkflowIdArg, complete_message

if TYPE_CHECKING:
    from temporalio.client import Client

    from flowctl.ops.visibility import Execution


def _signal_names(ctx: typer.Context, incomplete: str) -> list[str]:
    return complete_message("signal", ctx, incomplete)


def _query_names(ctx: typer.Context, incomplete: str) -> list[str]:
    return complete_message("query", ctx, incomplete)


@app.command(
    rich_help_panel=SEND,
    epilog="Examples: flowctl signal order-A-1001 review --set decision=approve --set reviewer=maria;  "
    "flowctl signal --query \"FlowStatus = 'awaiting_verification'\" verify-email --yes",
)
def signal(
    ctx: typer.Context,
    workflow_id: Annotated[str | None, typer.Argument(help="workflow id (or use --query)", show_default=False)] = None,
    name: Annotated[
        str | None, typer.Argument(help="signal name, e.g. review", autocompletion=_signal_names, show_default=False)
    ] = None,
    input: InputOpt = None,  # noqa: A002 - the flag is --input
    set_: SetOpt = None,
    query: batch.QueryOpt = None,
    dry_run: batch.DryRunOpt = False,
    yes: batch.YesOpt = False,
    limit: batch.LimitOpt = 1000,
) -> None:
    """Send a signal, validated against the signal model of each workflow's kind."""
    from flowctl import catalog, inputs
    from flowctl.errors import UsageError
    from flowctl.ops import messages

    if query is not None and name is None:
        workflow_id, name = None, workflow_id  # `signal --query Q NAME`: the one word is the signal
    batch.target(workflow_id, query)
    if not name:
        raise UsageError("which signal? give its name after the workflow id", hint="see 'flowctl kinds KIND'")
    signal_name = name
    app_ = state(ctx)
    raw = inputs.read_json_input(input) if input is not None else None  # malformed JSON: exit 2 before any RPC

    async def one(client: Client, wid: str) -> None:
        payload = await messages.message_payload(client, wid, "signal", signal_name, raw, set_ or [])
        await messages.signal(client, wid, signal_name, payload)

    def check(matches: list[Execution]) -> None:
        """The signal and its payload fit the kind of every workflow the query selected."""
        for workflow_type in sorted({row.workflow_type for row in matches}):
            messages.payload_for(catalog.by_type(workflow_type), "signal", signal_name, raw, set_ or [])

    batch.dispatch(
        app_, f"signal {name}", workflow_id, query, one,
        done={"signal": name, "sent": True}, said=f"signal {name!r} sent to {workflow_id}",
        dry_run=dry_run, yes=yes, limit=limit, check=check,
    )  # fmt: skip


@app.command(rich_help_panel=INSPECT, epilog="Example: flowctl query order-A-1001 status -o json")
def query(
    ctx: typer.Context,
    workflow_id: WorkflowIdArg,
    name: Annotated[str, typer.Argument(help="query name", autocompletion=_query_names)] = "status",
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="how long a worker has to answer (default 15s)", show_default=False)
    ] = None,
) -> None:
    """Ask a workflow a query (default: status) and print its answer; a worker must be running."""
    from flowctl import catalog, inputs
    from flowctl.ops import messages, runs

    app_ = state(ctx)
    wait_for = inputs.parse_duration(timeout, field="--timeout") if timeout else messages.QUERY_TIMEOUT

    async def action(client: Client) -> Any:
        from flowctl.errors import NoWorkerError

        # One call when the id names the kind and the kind has the query: the query itself (a
        # missing workflow is exit 3 all the same). Otherwise the workflow's type decides first.
        guessed = catalog.kind_for_id(workflow_id)
        if guessed is None or all(query.name != name for query in guessed.queries):
            info = await runs.describe(client, workflow_id)
            kind = catalog.for_workflow_type(info.workflow_type)
            if kind is not None:
                catalog.message(kind, "query", name)
            return await messages.query(client, workflow_id, name, timeout=wait_for, task_queue=info.task_queue)
        try:
            return await messages.query(client, workflow_id, name, timeout=wait_for)
        except NoWorkerError as err:  # name the queue nobody serves, as after a describe
            queue = (await runs.describe(client, workflow_id)).task_queue
            raise NoWorkerError(err.message, hint=f"is 'flowctl worker' running on task queue {queue!r}?") from None

    app_.output.data(app_.run(action))
