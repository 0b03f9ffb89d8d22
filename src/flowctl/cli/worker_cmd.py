"""`flowctl worker`: the long-running process hosting workflows and activities."""

from __future__ import annotations

from typing import Annotated

import typer

from flowctl.cli.app import OPERATE, app, state


@app.command(
    rich_help_panel=OPERATE,
    epilog="Examples: flowctl worker --task-queue orders --max-activities 50 --max-cached-workflows 500 --shutdown-grace 1m;  "
    "flowctl worker --health-port 8080 --health-host 0.0.0.0   (a Kubernetes pod: livenessProbe httpGet /livez, "
    "readinessProbe httpGet /readyz; give terminationGracePeriodSeconds more than --shutdown-grace)\n\n"
    "/livez: 200 while the process runs. /readyz: 200 once the server lists this worker polling both the "
    "workflow and activity tasks of its queue; 503 while it starts, while the server is unreachable, and "
    "while it drains after SIGTERM.",
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
    health_port: Annotated[
        int | None,
        typer.Option(
            "--health-port",
            metavar="PORT",
            min=0,
            max=65535,
            help="serve /livez and /readyz probes on this port (0: any free; default: worker.health_port, off)",
        ),
    ] = None,
    health_host: Annotated[
        str | None,
        typer.Option(
            "--health-host",
            metavar="ADDRESS",
            help="address the health port binds (default: worker.health_host, 127.0.0.1)",
        ),
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
        "worker.health_port": ("--health-port", health_port),
        "worker.health_host": ("--health-host", health_host),
    }
    settings = config.with_flags(app_.settings(), flags)
    if health_host is not None and settings.worker.health_port is None:
        from flowctl.errors import UsageError

        raise UsageError("--health-host needs --health-port (or worker.health_port): it says where the probes listen")
    options = worker_core.WorkerOptions(
        task_queue=settings.task_queue,
        max_activities=settings.worker.max_activities,
        max_cached_workflows=settings.worker.max_cached_workflows,
        shutdown_grace=settings.worker.shutdown_grace,
        metrics_port=settings.worker.metrics_port,
        health_port=settings.worker.health_port,
        health_host=settings.worker.health_host,
    )
    target = app_.target()

    def ready(line: str) -> None:
        app_.output.say(line)

    worker_core.configure_logging()
    import asyncio  # here, not at the top: `--help` loads this module

    asyncio.run(worker_core.run(settings, target, options, on_ready=ready))
    app_.output.say("flowctl worker stopped")
