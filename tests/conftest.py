"""Test harness: a real dev server started by `flowctl server start`, a real `flowctl worker`.

Every CLI test runs the installed `flowctl` as a subprocess, so exit codes and crashes at
exit are the ones users see.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
FLOWCTL = str(BIN / "flowctl")
TEMPORAL = str(BIN / "temporal")


# Ports the tests choose come from below the kernel's ephemeral range (32768-60999), a block
# per xdist worker, taken in turn. A port got with bind(:0) is the kernel's to give again: a
# dev server picks its HTTP, metrics and internal ports that way, and one of them once landed
# on a port another test had chosen (the likeliest way a server that had answered died in CI).
_PORT_BLOCK = 1500
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
_PORTS = 19000 + (int(_worker.removeprefix("gw")) + 1 if _worker else 0) * _PORT_BLOCK
_turn = itertools.count()


def free_port() -> int:
    for _ in range(_PORT_BLOCK):
        port = _PORTS + next(_turn) % _PORT_BLOCK
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_PORTS}-{_PORTS + _PORT_BLOCK - 1}")


def uid(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def order_input(
    order_id: str, *, card: str = "tok_visa", price: float = 5.0, sku: str = "SKU-1", qty: int = 1
) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": "cust-test",
        "email": "test@example.com",
        "items": [{"sku": sku, "quantity": qty, "unit_price": price}],
        "card": card,
    }


@dataclass
class Run:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"flowctl {' '.join(self.args)} -> {self.code}\nstdout: {self.stdout}\nstderr: {self.stderr}"


@dataclass
class Cli:
    """Runs the installed flowctl with an isolated environment."""

    env: dict[str, str]
    cwd: Path

    def __call__(
        self, *args: str, stdin: str | None = None, timeout: float = 120, env: dict[str, str] | None = None
    ) -> Run:
        proc = subprocess.run(
            [FLOWCTL, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **(env or {})},
            cwd=self.cwd,
        )
        return Run(args, proc.returncode, proc.stdout, proc.stderr)

    def worker(self, *args: str, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen[bytes]:
        """Start `flowctl worker` and return once it printed its ready line."""
        log = log or self.cwd / f"worker-{uuid.uuid4().hex[:6]}.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                [FLOWCTL, "worker", *args], env={**self.env, **(env or {})}, cwd=self.cwd, stdout=fh, stderr=fh
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if b"worker ready" in log.read_bytes():
                proc.log = log  # type: ignore[attr-defined]
                return proc
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        proc.kill()
        raise AssertionError(f"worker did not start:\n{log.read_text()}")


def read_terminal(leader: int, timeout: float = 60) -> bytes:
    """Everything written to a pseudo-terminal until the process on it exits; closes it."""
    import select

    screen = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"the process on the terminal is still running after {timeout:.0f}s: {screen[-2000:]!r}"
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closes with the process
                break
            if not chunk:
                break
            screen += chunk
    finally:
        os.close(leader)
    return screen


def at_a_terminal(flowctl: Cli, args: list[str], answer: str) -> Run:
    """Run flowctl with a terminal as stdin and stderr (where its question goes), answering once."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [FLOWCTL, *args], env=flowctl.env, stdin=follower, stdout=subprocess.PIPE, stderr=follower
    )  # fmt: skip
    os.close(follower)
    os.write(leader, f"{answer}\n".encode())
    screen = read_terminal(leader)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    return Run(tuple(args), proc.wait(timeout=60), stdout, screen.decode(errors="replace"))


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout=timeout)


def isolated_env(root: Path, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "FLOWCTL_"))}
    env.update(
        FLOWCTL_CONFIG=str(config),
        XDG_STATE_HOME=str(root / "state"),
        XDG_CONFIG_HOME=str(root / "config"),
        NO_COLOR="1",
        COLUMNS="200",
    )
    return env


def write_config(root: Path, *, port: int, task_queue: str, extra: str = "") -> Path:
    config = root / "flowctl.toml"
    config.write_text(
        f"""
task_queue = "{task_queue}"
{extra}
[server]
port = {port}
ui_port = {free_port()}
[services.local]
db = "{root / "ledger.db"}"
[profile.default]
address = "127.0.0.1:{port}"
"""
    )
    return config


@dataclass
class Stack:
    """A running dev server and worker, with a CLI wired to them."""

    root: Path
    port: int
    task_queue: str
    cli: Cli
    worker: subprocess.Popen[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ledger_db(self) -> Path:
        return self.root / "ledger.db"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    port = free_port()
    task_queue = uid("tq-")
    config = write_config(root, port=port, task_queue=task_queue)
    cli = Cli(isolated_env(root, config), root)
    started = cli("server", "start", timeout=120)
    assert started.code == 0, str(started)
    worker = cli.worker()
    yield Stack(root, port, task_queue, cli, worker)
    stop_process(worker)
    cli("server", "stop")


@pytest.fixture
def flowctl(stack: Stack) -> Cli:
    return stack.cli


@pytest.fixture
def local_cli(tmp_path: Path) -> Cli:
    """A CLI with an isolated config and no server (port nobody listens on)."""
    port = free_port()
    config = write_config(tmp_path, port=port, task_queue="local")
    return Cli(isolated_env(tmp_path, config), tmp_path)


def start(flowctl: Cli, kind: str, data: dict[str, Any]) -> str:
    run = flowctl("start", kind, "-i", json.dumps(data), "-o", "json")
    assert run.code == 0, str(run)
    return str(run.json()["workflow_id"])


def ledger(flowctl: Cli, ref: str) -> dict[str, list[dict[str, Any]]]:
    """What the local services recorded for an order, user or request id (`flowctl ledger`)."""
    run = flowctl("ledger", "--order", ref, "-o", "json")
    assert run.code == 0, str(run)
    return run.json()  # type: ignore[no-any-return]


def statuses(book: dict[str, list[dict[str, Any]]], table: str) -> list[str]:
    return [row["status"] for row in book[table]]


def wait_for_state(
    flowctl: Cli, workflow_id: str, field: str, value: Any, timeout: float = 30, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """The workflow's state once its query says `field` is `value`. For the flow status (`status`),
    `flowctl wait --for` gets there first by long-polling the history: one process where polling
    `query` starts dozens, and processes are most of what the suite spends its CPU on."""
    deadline = time.monotonic() + timeout
    waited = None
    if field == "status":
        since = f"{math.ceil(timeout)}s"
        waited = flowctl("wait", workflow_id, "--for", value, "--timeout", since, env=env, timeout=timeout + 30)
    while True:
        run = flowctl("query", workflow_id, "-o", "json", env=env)
        if run.code == 0 and run.json().get(field) == value:
            return run.json()  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"{workflow_id}: {field} never became {value!r}: {waited}\n{run}"
        time.sleep(0.2)


def wait_for_status(
    flowctl: Cli, workflow_id: str, status: str, timeout: float = 30, env: dict[str, str] | None = None
) -> dict[str, Any]:
    return wait_for_state(flowctl, workflow_id, "status", status, timeout, env)
