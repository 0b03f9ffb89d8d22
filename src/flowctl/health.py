"""`flowctl worker --health-port`: liveness and readiness over HTTP, for an orchestrator's probes.

`/livez` answers 200 while the process runs. `/readyz` answers 200 once the server lists this
worker's identity polling its task queue for workflow and for activity tasks, with a poll newer
than any it knew of before the worker started (the SDK tells nothing of its polls; the server's
DescribeTaskQueue is the one witness). It answers 503 while the worker starts, while the server
is unreachable, and from SIGINT/SIGTERM on while the worker drains. Both answer GET and HEAD
with a small JSON body; anything else is 404 or 405.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flowctl.errors import FlowctlError, UsageError

if TYPE_CHECKING:
    from temporalio.client import Client

    from flowctl.ops.taskqueues import QueueType

# How often a starting worker asks the server whether it lists its polls (there is no long-poll).
CONFIRM_INTERVAL = timedelta(seconds=0.5)
STARTING, READY, DRAINING = "starting", "ready", "draining"


class Health:
    """What the probes answer: the worker's state, as the worker and the server see it."""

    def __init__(self, task_queue: str, *, away: Callable[[], bool] = lambda: False) -> None:
        self.task_queue = task_queue
        self.state = STARTING
        self.identity: str | None = None
        self.away = away  # whether the worker's log says the server stopped answering
        self.problem: str | None = None  # why polling could not be confirmed yet, if a call failed

    def readiness(self) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"status": self.state, "task_queue": self.task_queue}
        if self.identity:
            body["identity"] = self.identity
        if self.state == READY and self.away():
            return 503, {**body, "status": "unreachable", "reason": "the Temporal server stopped answering"}
        if self.state == STARTING:
            body["reason"] = self.problem or "the server does not list this worker's polls yet"
        elif self.state == DRAINING:
            body["reason"] = "stopping: running activities are given their grace period"
        return (200 if self.state == READY else 503), body


def application(health: Health) -> Any:
    from aiohttp import web

    from flowctl.output import to_json

    def answer(status: int, body: dict[str, Any]) -> web.Response:
        return web.Response(
            status=status, text=to_json(body), content_type="application/json", headers={"cache-control": "no-store"}
        )

    async def livez(request: web.Request) -> web.Response:
        return answer(200, {"status": "live", "task_queue": health.task_queue})

    async def readyz(request: web.Request) -> web.Response:
        return answer(*health.readiness())

    app = web.Application(client_max_size=1024)  # probes send no body
    app.router.add_get("/livez", livez)  # GET and HEAD
    app.router.add_get("/readyz", readyz)
    return app


class Server:
    """The probes' HTTP server, bound at once so a port in use is refused before the worker starts."""

    def __init__(self, health: Health, host: str, port: int) -> None:
        self.health, self.host, self.port = health, host, port
        self._runner: Any = None

    async def start(self) -> int:
        """Bind and serve; the port bound (which port 0 chose). `UsageError` when it cannot bind."""
        from aiohttp import web

        runner = web.AppRunner(
            application(self.health),
            access_log=None,
            logger=quiet_logger("flowctl.health"),
            keepalive_timeout=5.0,  # probes come every few seconds; an idle connection holds a descriptor
            shutdown_timeout=1.0,  # the answers are instant: nothing to wait for at exit
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, shutdown_timeout=1.0)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            why = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise UsageError(
                f"--health-port {self.port} on {self.host}: {why}",
                hint="choose another port (worker.health_port) or address (--health-host)",
            ) from None
        self._runner = runner
        server: Any = site._server  # the listening socket: the port bound when 0 asked for any
        sockets = server.sockets if server is not None else None
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.port
        return self.port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class ClientFaults(logging.Filter):
    """Drops aiohttp's report of a request that is not HTTP (a port scan, garbage): the client's
    fault, answered 400, and a traceback in the log for each would let anyone flood it. The
    health server and the relay log through it."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        failure = record.exc_info[1] if record.exc_info else None
        return not isinstance(failure, HttpProcessingError)


def quiet_logger(name: str) -> logging.Logger:
    log = logging.getLogger(name)
    if not any(isinstance(f, ClientFaults) for f in log.filters):
        log.addFilter(ClientFaults())
    return log


async def polls_before(client: Client, task_queue: str) -> list[QueueType]:
    """The polls the server knows of before this worker polls (none, if it cannot say)."""
    from flowctl.ops import taskqueues

    try:
        return await taskqueues.describe(client, [task_queue])
    except FlowctlError:  # confirm_polling says why, and keeps asking
        return []


async def confirm_polling(
    health: Health, client: Client, before: list[QueueType], *, interval: timedelta = CONFIRM_INTERVAL
) -> None:
    """Ask the server until it lists this worker's polls on both types, then mark it ready.
    A call that fails is said once in the log and asked again: /readyz stays 503 meanwhile."""
    from flowctl.ops import taskqueues

    identity = client.identity
    health.identity = identity
    warned = False
    while health.state == STARTING:
        try:
            rows = await taskqueues.describe(client, [health.task_queue])
        except FlowctlError as exc:
            health.problem = f"cannot confirm this worker polls: {exc.message}"
            if not warned:
                logging.getLogger("flowctl.worker").warning("%s; /readyz answers 503 until it can", health.problem)
                warned = True
        else:
            if taskqueues.polled_by(rows, identity, before):
                if health.state == STARTING:
                    health.state = READY
                return
        await asyncio.sleep(interval.total_seconds())
