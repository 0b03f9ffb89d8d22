"""`flowctl watch ID`: a workflow's steps as they happen, until it ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from flowctl.cli import render
from flowctl.cli.app import RUN, App, app, fail, state
from flowctl.cli.options import RunIdOpt, TimeoutOpt, WorkflowIdArg

if TYPE_CHECKING:
    from temporalio.client import Client

    from flowctl.ops.runs import Outcome


@app.command(
    rich_help_panel=RUN,
    epilog="Examples: flowctl watch order-A-1001;  flowctl watch order-A-1001 -o jsonl | jq .change;  "
    "flowctl watch order-A-1001 --timeout 10m\n\n"
    "Exit codes: the workflow's outcome, as flowctl result gives it; 20 still running at --timeout.",
)
def watch(ctx: typer.Context, workflow_id: WorkflowIdArg, run_id: RunIdOpt = None, timeout: TimeoutOpt = None) -> None:
    """Show a workflow's steps, compensations, retries and waits live; the exit code is its outcome."""
    import asyncio

    from flowctl import inputs
    from flowctl.errors import ExitCode
    from flowctl.ops import runs
    from flowctl_workflows import durations

    app_ = state(ctx)
    wait_for = inputs.parse_duration(timeout, field="--timeout") if timeout else None

    async def action(client: Client) -> Outcome:
        info = await runs.describe(client, workflow_id, run_id)  # a missing workflow exits 3 before anything is drawn
        watching = follow(app_, client, workflow_id, run_id=run_id)
        limit = wait_for if info.status == "running" else None  # a closed one replays to its end, quickly
        try:
            await (asyncio.wait_for(watching, limit.total_seconds()) if limit is not None else watching)
        except TimeoutError:
            after = durations.format(wait_for) if wait_for is not None else ""
            app_.output.say(f"{workflow_id} is still running after {after}; it goes on")
            return runs.Outcome(workflow_id, "running", ExitCode.STILL_RUNNING, error=f"still running after {after}")
        return await runs.wait_result(client, workflow_id, patience=app_.patience(), run_id=run_id)

    app_.doing = f"watching {workflow_id}; the workflow was not changed and goes on"
    outcome = app_.run(action)
    if app_.output.format == "json":
        app_.output.data(outcome.as_dict())
    fail(outcome.code)


async def follow(app_: App, client: Client, workflow_id: str, *, run_id: str | None = None) -> None:
    """Render the changes: live at a terminal, a plain line each when piped, JSON lines with -o jsonl."""
    from flowctl.output import printable
    from flowctl.watch import changes, describe_change

    out = app_.output
    if out.format == "text" and out.out.is_terminal:
        await _live(app_, client, workflow_id, run_id)
        return
    async for _view, change in changes(client, workflow_id, patience=app_.patience(), run_id=run_id):
        if out.format == "jsonl":
            out.line({"workflow_id": workflow_id, **change})
        elif out.format == "text":
            out.write(printable(f"{workflow_id} +{change['elapsed']:.1f}s {describe_change(change)}"))


async def _live(app_: App, client: Client, workflow_id: str, run_id: str | None) -> None:
    from rich.live import Live

    from flowctl.watch import View, changes

    view = View(workflow_id)
    with Live(get_renderable=lambda: render.watch_view(view), console=app_.output.out, refresh_per_second=4):
        async for current, _change in changes(client, workflow_id, patience=app_.patience(), run_id=run_id):
            view = current
