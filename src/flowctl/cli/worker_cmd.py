"""`flowctl worker`: the long-running process hosting workflows and activities."""

from __future__ import annotations

from typing import Annotated

import typer

from flowctl.cli.app import OPERATE, app, state


@app.command(
    rich_help_panel=OPERATE,
    epilog="Example: flowctl worker --task-queue orders --max-activities 50 --max-cached-workflows 500 --shutdown-grace 1m",
)
def worker(
    ctx: typer.Context,
    task_queue: Annotated[str | None, typer.Option("--task-queue", help="default: task_queue in config")] = None,
    max_activities: Annotated[
        int | None,
        typer.Option("--max-activities", metavar="N", min=1, help="concurrent activities (default: config, 100)"),
    ] = None,
    max_cached_workflows: Annotated[
        int | None,
        typer.Option(
            "--max-cached-workflows",
            metavar="N",
            min=0,
            help="workflows kept in memory between tasks; bounds the worker's memory (default: config, 1000)",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", min=1, max=65535, help="serve Prometheus metrics on this port")
    ] = None,
    shutdown_grace: Annotated[
        str | None,
        typer.Option(
            "--shutdown-grace", metavar="DURATION", help="time running activities get at shutdown (default 30s)"
        ),
    ] = None,
) -> None:
    """Host every kind's workflow and activities; SIGINT/SIGTERM drain it gracefully."""
    from flowctl import config
    from flowctl import worker as worker_core

    app_ = state(ctx)
    flags = {
        "task_queue": ("--task-queue", task_queue),
        "worker.max_activities": ("--max-activities", max_activities),
        "worker.max_cached_workflows": ("--max-cached-workflows", max_cached_workflows),
        "worker.shutdown_grace": ("--shutdown-grace", shutdown_grace),
        "worker.metrics_port": ("--metrics-port", metrics_port),
    }
    settings = config.with_flags(app_.settings(), flags)
    options = worker_core.WorkerOptions(
        task_queue=settings.task_queue,
        max_activities=settings.worker.max_activities,
        max_cached_workflows=settings.worker.max_cached_workflows,
        shutdown_grace=settings.worker.shutdown_grace,
        metrics_port=settings.worker.metrics_port,
    )
    target = app_.target()

    def ready(line: str) -> None:
        app_.output.say(line)

    worker_core.configure_logging()
    import asyncio  # here, not at the top: `--help` loads this module

    asyncio.run(worker_core.run(settings, target, options, on_ready=ready))
    app_.output.say("flowctl worker stopped")
