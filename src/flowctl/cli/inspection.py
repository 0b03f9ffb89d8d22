"""`flowctl result`, `describe`, `list`, `count` and `history`."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowctl.cli import render
from flowctl.cli.app import INSPECT, RUN, app, fail, state
from flowctl.cli.options import RunIdOpt, TimeoutOpt, WorkflowIdArg

if TYPE_CHECKING:
    from temporalio.client import Client

    from flowctl.ops.runs import Outcome


@app.command(
    rich_help_panel=RUN,
    epilog="Example: flowctl result order-A-1001 --timeout 5m -o json; echo $?\n\n"
    "Exit codes: 0 succeeded; 10 completed unsuccessfully (rejected, compensated, expired); "
    "11 failed, timed out or terminated; 12 cancelled; 20 still running at --timeout; 3 no such workflow.",
)
def result(ctx: typer.Context, workflow_id: WorkflowIdArg, timeout: TimeoutOpt = None, run_id: RunIdOpt = None) -> None:
    """Wait for a workflow's result; the exit code says how it ended."""
    from flowctl import inputs
    from flowctl.ops import runs

    app_ = state(ctx)
    wait_for = inputs.parse_duration(timeout, field="--timeout") if timeout else None

    async def action(client: Client) -> Outcome:
        return await runs.wait_result(client, workflow_id, timeout=wait_for, patience=app_.patience(), run_id=run_id)

    app_.doing = f"waiting for {workflow_id} to end; the workflow was not changed and goes on"
    outcome = app_.run(action)
    app_.output.data(outcome.as_dict(), lambda out: render.outcome(out, outcome))
    fail(outcome.code)


@app.command(rich_help_panel=INSPECT, epilog="Example: flowctl describe order-A-1001 -o json")
def describe(ctx: typer.Context, workflow_id: WorkflowIdArg, run_id: RunIdOpt = None) -> None:
    """Show a workflow's type, status, times, search attributes and Web UI link."""
    from flowctl.ops import runs

    app_ = state(ctx)

    async def action(client: Client) -> dict[str, Any]:
        info = (await runs.describe(client, workflow_id, run_id)).as_dict()
        info["ui_url"] = runs.ui_url(app_.ui_base(), client.namespace, workflow_id, info["run_id"])
        return info

    app_.output.data(app_.run(action))


KindFilterOpt = Annotated[str | None, typer.Option("--kind", help="only this kind", show_default=False)]
StatusFilterOpt = Annotated[
    str | None,
    typer.Option(
        "--status",
        help="running, completed, failed, cancelled, terminated, timed_out, or a flow status "
        "(awaiting_review, compensated, rejected, ...)",
        show_default=False,
    ),
]
QueryFilterOpt = Annotated[str | None, typer.Option("--query", help="a Temporal visibility query", show_default=False)]


@app.command(
    rich_help_panel=INSPECT,
    name="list",
    epilog="Examples: flowctl list --kind order --status running;  flowctl list --query \"FlowStatus = 'awaiting_review'\" -o jsonl",
)
def list_(
    ctx: typer.Context,
    kind: KindFilterOpt = None,
    status: StatusFilterOpt = None,
    query: QueryFilterOpt = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, max=10_000, help="at most this many")] = 50,
) -> None:
    """List workflows, newest first, filtered by kind, status or a visibility query."""
    from flowctl.ops import visibility

    app_ = state(ctx)
    selected = visibility.list_query(kind, status, query)

    async def action(client: Client) -> list[dict[str, Any]]:
        rows = [e.as_dict() for e in await visibility.list_workflows(client, selected, limit, user_query=query)]
        if len(rows) == limit:
            total = await visibility.count_matching(client, selected)
            if total > limit:
                app_.output.warn(f"{limit} of {total} shown, {total - limit} left out: raise --limit to see them")
        return rows

    rows = app_.run(action)
    app_.output.data(
        rows,
        lambda out: (
            app_.output.table(rows, ["workflow_id", "kind", "status", "flow_status", "start_time"])
            if rows
            else out.print("no workflows match", markup=False)
        ),
    )


class CountBy(StrEnum):
    status = "status"
    flow_status = "flow-status"
    kind = "kind"


@app.command(
    rich_help_panel=INSPECT,
    epilog="Examples: flowctl count --kind order --by flow-status;  "
    "flowctl count --kind order --status compensated --query \"CloseTime > '2026-12-01T00:00:00Z'\" -o json\n\n"
    "The server counts: --by status is its GROUP BY ExecutionStatus, the only grouping it offers; "
    "--by flow-status and --by kind are one count per value, sent at once. Groups with none are left out.",
)
def count(
    ctx: typer.Context,
    kind: KindFilterOpt = None,
    status: StatusFilterOpt = None,
    query: QueryFilterOpt = None,
    by: Annotated[
        CountBy | None, typer.Option("--by", help="a count for each status, flow status or kind", show_default=False)
    ] = None,
) -> None:
    """Count workflows, filtered as list filters them, in total or by status, flow status or kind."""
    from flowctl.ops import visibility

    app_ = state(ctx)
    selected = visibility.list_query(kind, status, query)

    async def action(client: Client) -> tuple[int, dict[str, int]]:
        return await visibility.count_groups(client, selected, by.value if by else None, user_query=query)

    total, groups = app_.run(action)
    data: dict[str, Any] = {"total": total}
    if by is not None:
        data.update(by=by.value, counts=groups)
    app_.output.data(data, lambda out: render.counts(out, total, by.value if by else None, groups))


@app.command(
    rich_help_panel=INSPECT,
    epilog="Examples: flowctl history order-A-1001 -o json > h.json;  flowctl history order-A-1001 --follow",
)
def history(
    ctx: typer.Context,
    workflow_id: WorkflowIdArg,
    follow: Annotated[bool, typer.Option("--follow", help="keep printing events until the workflow closes")] = False,
    time_format: Annotated[
        str, typer.Option("--time-format", metavar="relative|iso", help="text view: relative (since the start) or iso")
    ] = "relative",
    run_id: RunIdOpt = None,
) -> None:
    """Print the event history: readable text, proto-JSON (-o json, replayable) or a JSON line per event."""
    from flowctl import history
    from flowctl.errors import UsageError
    from flowctl.history import Summarizer, event_dict
    from flowctl.ops import runs
    from flowctl.output import printable

    if time_format not in ("relative", "iso"):
        raise UsageError(f"--time-format {time_format!r} is not relative or iso")
    app_ = state(ctx)
    out = app_.output

    async def action(client: Client) -> None:
        if out.format == "json":
            # One document: the standard history JSON that replayers and `temporal` read.
            if follow:
                await runs.wait_result(client, workflow_id, patience=app_.patience(), run_id=run_id)
            history_ = await history.fetch(client, workflow_id, run_id)
            out.write(history_.to_json())
            return
        summarizer = Summarizer(time_format, keys=app_.target().keys)
        events = history.events(client, workflow_id, follow=follow, patience=app_.patience(), run_id=run_id)
        async for event in events:
            if out.format == "jsonl":
                out.line(event_dict(event))
            else:
                item = summarizer.summary(event)
                when = summarizer.shown_time(item)
                detail = printable(item["detail"])
                out.out.print(f"{item['event_id']:>4}  {when:>12}  {item['type']:<34} {detail}", markup=False)

    if follow:
        app_.doing = f"following the history of {workflow_id}; nothing was changed"
    app_.run(action)
