"""`flowctl wait`: wait for many workflows at once, a line for each as it ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowctl.cli.app import RUN, app, fail, state
from flowctl.cli.options import TimeoutOpt
from flowctl.output import printable

if TYPE_CHECKING:
    from temporalio.client import Client


@app.command(
    rich_help_panel=RUN,
    epilog="Examples: flowctl start order --from orders.jsonl > started.jsonl && flowctl wait --from started.jsonl;  "
    "flowctl wait --query \"FlowKind = 'order' AND ExecutionStatus = 'Running'\" --timeout 10m;  "
    "flowctl wait order-A-1 --for awaiting_review --timeout 5m && flowctl approve order-A-1 --as risk\n\n"
    "Exit codes: 0 every workflow succeeded (with --for: got there); else the worst way one ended: "
    "20 still running at --timeout, 12 cancelled, 11 failed, 10 completed unsuccessfully (with --for: "
    "ended without getting there), 3 no such workflow; 5 the server went away.",
)
def wait(
    ctx: typer.Context,
    workflow_ids: Annotated[list[str] | None, typer.Argument(help="workflows to wait for", show_default=False)] = None,
    source: Annotated[
        str | None,
        typer.Option("--from", metavar="FILE", help="the JSON lines start --from printed (or - for stdin)"),
    ] = None,
    query: Annotated[
        str | None, typer.Option("--query", help="every workflow this visibility query selects", show_default=False)
    ] = None,
    timeout: TimeoutOpt = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--for",
            metavar="STATUS",
            help="wait until each is, or has been, in this flow status (e.g. awaiting_review), or closed",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", metavar="N", min=1, max=2000, help="workflows waited for at once")
    ] = 200,
) -> None:
    """Wait for many workflows to end (or reach a flow status, --for), each by one long-poll: a line for each as
    it ends, a summary on stderr."""
    import time

    from flowctl import inputs
    from flowctl.errors import UsageError, worst
    from flowctl.ops import bulk, visibility

    app_ = state(ctx)
    given = [bool(workflow_ids), source is not None, query is not None]
    if sum(given) != 1:
        raise UsageError("give workflow ids, --from FILE or --query, one of them", hint="see 'flowctl wait --help'")
    if any(not workflow_id.strip() for workflow_id in workflow_ids or []):
        raise UsageError("a workflow id is empty", hint="give each workflow id, e.g. order-A-1001")
    if query is not None and not query.strip():
        raise UsageError("--query is empty", hint="e.g. --query \"FlowKind = 'order'\"")
    wait_for = inputs.parse_duration(timeout, field="--timeout") if timeout else None
    if until is not None:
        from flowctl.errors import did_you_mean
        from flowctl.ops.runs import CLOSED
        from flowctl_workflows.models import FLOW_STATUSES

        known = (*FLOW_STATUSES, CLOSED)
        if until not in known:
            raise UsageError(
                f"--for {until!r} is not a flow status",
                hint=did_you_mean(until, known) or f"give one of {', '.join(known)}",
            )
    ids, skipped = (list(dict.fromkeys(workflow_ids or [])), 0) if source is None else inputs.workflow_ids_from(source)
    out = app_.output

    def report(line: dict[str, Any]) -> None:
        if out.format == "json":  # one document, once every workflow has ended
            return
        if out.format == "jsonl":
            out.line(line)
        else:
            said = f": {line['error']}" if line.get("error") else ""
            out.write(printable(f"{line['status']:<12} {line['workflow_id']}{said}"))

    async def action(client: Client) -> list[dict[str, Any]]:
        chosen = ids
        if query is not None:
            found = await visibility.list_workflows(client, query, 100_000, user_query=query)
            chosen = list(dict.fromkeys(execution.workflow_id for execution in found))
        began = time.perf_counter()
        ended = await bulk.wait_all(
            client, chosen, timeout=wait_for, patience=app_.patience(), report=report, limit=concurrency, until=until
        )
        note = f"; {skipped} line(s) of --from named no workflow" if skipped else ""
        out.say(
            f"{bulk.summary(ended)} in {time.perf_counter() - began:.1f}s{note}"
        )  # in every format: scripts read stdout
        return ended

    app_.doing = f"waiting for {len(ids) or 'the selected'} workflow(s); none was changed and each goes on"
    ended = app_.run(action)
    if out.format == "json":
        out.data(ended)
    fail(worst(line["code"] for line in ended))
