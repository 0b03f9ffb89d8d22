"""`flowctl workers`: who polls flowctl's task queues, what waits in them; or wait until a worker polls."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowctl.cli.app import OPERATE, app, fail, state

if TYPE_CHECKING:
    from temporalio.client import Client

    from flowctl.ops.taskqueues import Poller, QueueType
    from flowctl.output import Output


@app.command(
    rich_help_panel=OPERATE,
    epilog="Examples: flowctl workers;  flowctl workers --task-queue orders -o json;  "
    "flowctl worker & flowctl workers --wait-ready --timeout 1m && flowctl start order ...\n\n"
    "A poller counts as polling while its last poll is under 75s old: an idle worker polls again at least "
    "once a minute, and the server keeps listing one that stopped for minutes. --wait-ready asks the server "
    "once a second (there is no long-poll for this). Backlog figures are the server's approximations, "
    "refreshed every few seconds (none from a server that does not report them).\n\n"
    "Exit codes: 0 a worker polls every queue for workflow and activity tasks; 3 nobody polls one of them "
    "(listed anyway, with a warning); 20 --wait-ready timed out; 5 the server cannot be reached.",
)
def workers(
    ctx: typer.Context,
    task_queues: Annotated[
        list[str] | None,
        typer.Option("--task-queue", metavar="QUEUE", help="task queue to look at; repeatable (default: task_queue)"),
    ] = None,
    wait_ready: Annotated[
        bool, typer.Option("--wait-ready", help="wait until a worker polls every queue for workflow and activity tasks")
    ] = False,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout",
            metavar="DURATION",
            help="with --wait-ready: how long to wait, e.g. 30s, 5m (default: until one polls; 0 looks once)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """List who polls each task queue (identity, last poll) and its backlog; warn when nobody does."""
    from flowctl import config, inputs
    from flowctl.errors import ExitCode, UsageError
    from flowctl.ops import taskqueues
    from flowctl_workflows import durations

    app_ = state(ctx)
    if timeout is not None and not wait_ready:
        raise UsageError("--timeout goes with --wait-ready", hint="see 'flowctl workers --help'")
    wait_for = inputs.parse_duration(timeout, field="--timeout") if timeout is not None else None
    settings = app_.settings()
    queues = list(dict.fromkeys(task_queues or [settings.task_queue]))
    for queue in queues:  # checked as the setting is: exit 2 naming the flag
        config.with_flags(settings, {"task_queue": ("--task-queue", queue)})
    out = app_.output
    named = ", ".join(repr(q) for q in queues)

    def waiting() -> None:
        every = durations.format(taskqueues.CHECK_INTERVAL)
        out.info(f"waiting for a worker to poll task queue {named} (asking the server every {every})")

    async def action(client: Client) -> tuple[bool, list[QueueType]]:
        if not wait_ready:
            rows = await taskqueues.describe(client, queues)
            return not taskqueues.unpolled(rows), rows
        return await taskqueues.wait_polled(client, queues, timeout=wait_for, patience=app_.patience(), waiting=waiting)

    app_.doing = (
        f"waiting for a worker to poll task queue {named}; nothing was changed"
        if wait_ready
        else f"asking who polls task queue {named}; nothing was changed"
    )
    polled, rows = app_.run(action)
    out.data([row.as_dict() for row in rows], lambda o: table(o, rows))
    if polled:
        return
    within = f" within {durations.format(wait_for)}" if wait_ready and wait_for is not None else ""
    for line in warnings(rows, settings.task_queue, within):
        out.warn(line)
    fail(ExitCode.STILL_RUNNING if wait_ready else ExitCode.NOT_FOUND)


def table(out: Output, rows: list[QueueType]) -> None:
    """One line per poller of each queue type (a `-` line for a type nobody polls), with its backlog."""
    lines: list[dict[str, Any]] = []
    for row in rows:
        backlog = row.backlog
        figures = {
            "backlog": "-" if backlog is None else backlog.approximate_count,
            "backlog_age": "-" if backlog is None or not backlog.approximate_count else _age(backlog.approximate_age),
        }
        pollers: list[Poller | None] = [*row.pollers] or [None]
        for poller in pollers:
            seen = "-"
            if poller is not None:
                stopped = "" if poller.polling(row.at) else ", stopped polling"
                ago = f"{_age(poller.age(row.at))} ago{stopped}"
                seen = f"{poller.last_access_time.isoformat(timespec='seconds')} ({ago})"
            identity = poller.identity if poller is not None else "-"
            lines.append(
                {"task_queue": row.task_queue, "type": row.type, "identity": identity, "last_poll": seen, **figures}
            )
    out.table(lines, ["task_queue", "type", "identity", "last_poll", "backlog", "backlog_age"])


def warnings(rows: list[QueueType], configured: str, within: str = "") -> list[str]:
    """A line for each queue that a type of goes unpolled: which types, what waits, who last polled."""
    import shlex

    from flowctl.ops import taskqueues

    said = []
    unpolled = taskqueues.unpolled(rows)
    for queue in dict.fromkeys(row.task_queue for row in unpolled):
        mine = [row for row in unpolled if row.task_queue == queue]
        what = " and ".join(row.type for row in mine)
        waiting = [
            f"{row.backlog.approximate_count} {row.type} task(s) wait, the oldest {_age(row.backlog.approximate_age)}"
            for row in mine
            if row.backlog is not None and row.backlog.approximate_count
        ]
        last = max((p for row in mine for p in row.pollers), key=lambda p: p.last_access_time, default=None)
        gone = f"; {last.identity} last polled {_age(last.age(mine[0].at))} ago" if last is not None else ""
        detail = "".join(f"; {line}" for line in waiting)
        start = "flowctl worker" + ("" if queue == configured else f" --task-queue {shlex.quote(queue)}")
        said.append(f"no worker polls task queue {queue!r} for {what} tasks{within}{gone}{detail} (start one: {start})")
    return said


def _age(delta: timedelta) -> str:
    from flowctl_workflows import durations

    return durations.format(timedelta(seconds=round(delta.total_seconds())))
