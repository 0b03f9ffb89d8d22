"""`flowctl worker`: hosts every kind's workflow and the activities over the configured bridge.

On SIGINT/SIGTERM it stops polling and gives running activities `shutdown_grace` to finish.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flowctl import catalog, health, searchattrs, tracing
from flowctl.config import Settings, ledger_path
from flowctl.connect import Target, connect
from flowctl.errors import UnreachableError, UsageError
from flowctl_workflows.kinds import KINDS
from flowctl_workflows.services import TRANSIENT_ERROR

if TYPE_CHECKING:
    from flowctl_workflows.services import Bridge
    from flowctl_workflows.services.http import HttpBridge
    from flowctl_workflows.services.openapi import Checked


@dataclass(frozen=True)
class WorkerOptions:
    task_queue: str
    max_activities: int
    shutdown_grace: timedelta
    max_cached_workflows: int
    metrics_port: int | None = None
    health_port: int | None = None  # serve /livez and /readyz (flowctl.health); 0: any free port
    health_host: str = "127.0.0.1"


class RetriedFailures(logging.Filter):
    """One line, not a traceback, for an activity failure Temporal retries (a transient fault).

    The SDK logs every failed attempt at WARNING with its traceback; for a service that timed
    out, the traceback is the bridge's own frames and says nothing the message does not.
    Other failures, which may be bugs, keep theirs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from temporalio.exceptions import ApplicationError

        failure = record.exc_info[1] if record.exc_info else None
        if isinstance(failure, ApplicationError) and failure.type == TRANSIENT_ERROR:
            record.msg = f"{record.msg}, to be retried: {failure}"
            record.exc_info = record.exc_text = None
        return True


class Outage(logging.Filter):
    """While the server is away, Core warns of every failed call: the log says once that it is
    away, folds those warnings, and says when it is back (`watch_server` keeps the state).

    Core may warn before `watch_server` notices: its first warning of a call that failed for
    want of the server becomes the line that says so."""

    def __init__(self) -> None:
        super().__init__()
        self.away = False
        self.folded = 0
        self.address = "the server"

    def filter(self, record: logging.LogRecord) -> bool:
        if not (is_core(record) and record.levelno < logging.ERROR):
            return True
        if self.away:
            self.folded += 1
            return False
        message = record.getMessage()
        if "retried" in message and "Unavailable" in message:
            self.away, self.folded = True, 1
            why = re.search(r'message: "([^"]+)"', message)
            record.name, record.args = "flowctl.worker", (self.address, why.group(1) if why else "unavailable")
            record.msg = STOPPED_ANSWERING
        return True


STOPPED_ANSWERING = "Temporal at %s stopped answering (%s): polls are retried until it is back"


def is_core(record: logging.LogRecord) -> bool:
    """Whether Core wrote it: forwarded under the "temporal" logger, named by Core's target
    ("temporal-sdk_core::temporalio_client::retry"); not the Python SDK's own ("temporalio.worker")."""
    return record.name == "temporal" or record.name.startswith(("temporal.", "temporal-", "temporal_"))


OUTAGE = Outage()
SERVER_CHECK_SECONDS = 2.0


async def watch_server(client: Any, address: str) -> None:
    """Log when the server stops answering and when it answers again."""
    from flowctl.ops.rpc import server_silence

    log = logging.getLogger("flowctl.worker")
    while True:
        await asyncio.sleep(SERVER_CHECK_SECONDS)
        why = await server_silence(client, timedelta(seconds=SERVER_CHECK_SECONDS))
        if why is not None:
            if not OUTAGE.away:
                OUTAGE.away, OUTAGE.folded = True, 0
                log.warning(STOPPED_ANSWERING, address, why)
            continue
        if OUTAGE.away:
            OUTAGE.away = False
            log.warning(
                "Temporal at %s answers again: polling resumed (%d retry warnings folded)", address, OUTAGE.folded
            )


class PrintableFormatter(logging.Formatter):
    """Log lines whose data (a workflow id another client chose, a failure's message) cannot
    colour or clear the terminal the log is read on: control characters are shown escaped."""

    def format(self, record: logging.LogRecord) -> str:
        from flowctl.output import printable

        return printable(super().format(record), lines=True)


def workflow_classes() -> list[type]:
    """Every kind's workflow class: what a worker hosts and what a replay checks."""
    return [catalog.workflow_class(kind) for kind in KINDS.values()]


def build(client: Any, bridge: Bridge, *, task_queue: str, review_timeout: timedelta, **options: Any) -> Any:
    """The Worker hosting every kind and its activities through `bridge`, for `flowctl worker`
    and the tests alike; `options` are the SDK Worker's own (concurrency, cache, shutdown)."""
    from temporalio.worker import Worker
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from flowctl_workflows import activities

    built = activities.build(bridge, review_timeout=review_timeout)
    # OpenTelemetry, when tracing is on, is the same module inside the sandbox as out (its context lives there).
    runner = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules("opentelemetry"))
    return Worker(
        client, task_queue=task_queue, workflows=workflow_classes(), activities=built, workflow_runner=runner, **options
    )


def configure_logging() -> None:
    """The worker's log on stderr: time, level, source, message."""
    handler = logging.StreamHandler()
    handler.setFormatter(PrintableFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RetriedFailures())
    handler.addFilter(OUTAGE)
    logging.basicConfig(level=logging.WARNING, handlers=[handler])


def make_bridge(settings: Settings) -> Bridge:
    """The configured bridge, its settings checked usable: a `UsageError` names what is not."""
    from flowctl_workflows.services.local import LedgerError, LocalServices

    if settings.services.bridge == "http":
        return http_bridge(settings)
    local = settings.services.local
    try:
        return LocalServices(
            ledger_path(settings),
            transient_failure_rate=local.transient_failure_rate,
            fraud_review_threshold_cents=round(local.fraud_review_threshold * 100),
            latency_seconds=local.latency.total_seconds(),
            auto_approve_below_cents=round(settings.approval.auto_approve_below * 100),
            reject_above_cents=round(settings.approval.reject_above * 100),
            blocked_requesters=tuple(settings.approval.blocked_requesters),
            admin_email=settings.onboarding.admin_email,
        )
    except LedgerError as exc:
        raise UsageError(str(exc), hint="fix or move the file, or set services.local.db to another path") from None


def http_bridge(settings: Settings) -> HttpBridge:
    """The `http` bridge over the route table: a route that cannot work is a `UsageError` naming its key."""
    from flowctl_workflows.flow import STEP_TIMEOUT
    from flowctl_workflows.services import http
    from flowctl_workflows.services.commands import COMMANDS

    options = settings.services.http
    try:
        routes = http.compile_routes(options, COMMANDS, STEP_TIMEOUT.total_seconds())
        token = http.token_from(options.token_env, options.token_file)
    except http.RouteError as exc:
        raise UsageError(str(exc), hint="see 'Wiring PURISTA services' in the README") from None
    if options.ca_file is not None and not options.ca_file.is_file():
        raise UsageError(f"services.http.ca_file {options.ca_file} is not a file")
    return http.HttpBridge(routes, token=token, ca_file=options.ca_file)


async def check_services(bridge: Bridge) -> list[Checked]:
    """Each route of an `http` bridge checked against its service (`openapi.check`); nothing for `local`."""
    from flowctl_workflows.services import http, openapi

    return await openapi.check(bridge) if isinstance(bridge, http.HttpBridge) else []


def refuse_broken_routes(rows: list[Checked]) -> None:
    """Refuse to run when a route cannot work: its service is down (exit 5) or does not serve it (exit 2)."""
    broken = [row for row in rows if not row.ok]
    if not broken:
        return
    first = broken[0]
    more = f" (and {len(broken) - 1} more: 'flowctl services check' lists them)" if len(broken) > 1 else ""
    message = f"{first.command}: {first.method} {first.url}: {first.state}{more}"
    if first.state.startswith("service down"):
        raise UnreachableError(message, hint=f"start the service, or fix {first.fix}")
    raise UsageError(message, hint=f"fix {first.fix}")


def require_free_port(port: int, what: str) -> None:
    """Refuse a port something already listens on, before anything binds it."""
    import errno
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            taken = exc.errno == errno.EADDRINUSE
            raise UsageError(
                f"{what} {port}: " + ("already in use" if taken else f"cannot be bound ({exc.strerror})"),
                hint="choose another port",
            ) from None


async def run(
    settings: Settings,
    target: Target,
    options: WorkerOptions,
    *,
    on_ready: Callable[[str], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or `stop`), then shut down gracefully."""
    probes = None
    if options.health_port is not None:  # bound first: a port in use is refused before anything starts
        if options.health_port and options.health_port == options.metrics_port:
            raise UsageError(f"--health-port and --metrics-port are both {options.health_port}: give each its own")
        probes = health.Server(
            health.Health(options.task_queue, away=lambda: OUTAGE.away), options.health_host, options.health_port
        )
        await probes.start()
    try:
        await _run(settings, target, options, on_ready=on_ready, stop=stop or asyncio.Event(), probes=probes)
    finally:
        if probes is not None:  # after the drain: /readyz said 503 throughout it
            await probes.close()


async def _run(
    settings: Settings,
    target: Target,
    options: WorkerOptions,
    *,
    on_ready: Callable[[str], None],
    stop: asyncio.Event,
    probes: health.Server | None,
) -> None:
    from temporalio.runtime import LogForwardingConfig, LoggingConfig, PrometheusConfig, Runtime, TelemetryConfig

    # Core's warnings (polls retried while the server is away) go through Python logging, so
    # the log has one format and no colour codes; Core would write its own to stderr.
    forward = LogForwardingConfig(logger=logging.getLogger("temporal"), prepend_target_on_message=False)
    logs = dataclasses.replace(LoggingConfig.default, forwarding=forward)
    if options.metrics_port:
        require_free_port(options.metrics_port, "--metrics-port")
    bridge = make_bridge(settings)  # a bad ledger or route table is refused before anything is contacted
    try:
        refuse_broken_routes(await check_services(bridge))  # and services that cannot serve their routes
    except BaseException:
        await bridge.close()
        raise
    metrics = PrometheusConfig(bind_address=f"127.0.0.1:{options.metrics_port}") if options.metrics_port else None
    runtime = Runtime(telemetry=TelemetryConfig(logging=logs, metrics=metrics))
    client = await connect(target, runtime=runtime, interceptors=tracing.interceptors(settings))
    await searchattrs.require(client)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)  # a second signal changes nothing: the drain goes on
    worker = build(
        client,
        bridge,
        task_queue=options.task_queue,
        review_timeout=settings.order.review_timeout,
        max_concurrent_activities=options.max_activities,
        max_cached_workflows=options.max_cached_workflows,
        graceful_shutdown_timeout=options.shutdown_grace,
    )
    OUTAGE.address = target.address
    watching = asyncio.create_task(watch_server(client, target.address))
    confirming: asyncio.Task[None] | None = None
    try:
        # What the server knew of this identity before it polled (a process before it may have had it).
        before = await health.polls_before(client, options.task_queue) if probes is not None else []
        async with worker:
            health_url = f", health: {probes.url}/readyz" if probes is not None else ""
            on_ready(
                f"flowctl worker ready: task queue {options.task_queue!r} on {target.address} "
                f"(namespace {target.namespace}), kinds: {', '.join(KINDS)}, bridge: {settings.services.bridge}"
                f"{health_url}"
            )
            if probes is not None:
                confirming = asyncio.create_task(health.confirm_polling(probes.health, client, before))
            await stop.wait()
            if probes is not None:
                probes.health.state = health.DRAINING
    finally:
        if probes is not None:
            probes.health.state = health.DRAINING  # a worker that failed drains too, till it exits
        watching.cancel()
        if confirming is not None:
            confirming.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await bridge.close()
        tracing.flush(5000)
