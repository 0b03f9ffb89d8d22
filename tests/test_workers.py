"""`flowctl workers` (who polls, what waits, `--wait-ready`) and `flowctl worker --health-port`
(/livez, /readyz), against a real dev server and real workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import FLOWCTL, Cli, Stack, free_port, order_input, stop_process, uid

from flowctl.ops.taskqueues import POLL_WINDOW, Poller, QueueType, polled_by


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def probe(port: int, path: str) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of GET http://127.0.0.1:port/path; (0, {}) while nothing listens."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"{}")
    except (ConnectionError, urllib.error.URLError):
        return 0, {}


def raw(port: int, request: bytes) -> bytes:
    """The status line the health server answers `request` (bytes as sent) with."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        return sock.recv(4096).split(b"\r\n", 1)[0]


def spawn_worker(flowctl: Cli, *args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`flowctl worker`, not waited for (its start is what a probe should see)."""
    with log.open("wb") as fh:
        return subprocess.Popen(
            [FLOWCTL, "worker", *args], env={**flowctl.env, **env}, cwd=flowctl.cwd, stdout=fh, stderr=fh
        )


def test_nobody_polling_is_a_warning_and_exit_3_with_the_backlog(flowctl: Cli) -> None:
    queue = uid("tq-nobody-")
    run = flowctl("workers", "--task-queue", queue, "-o", "json")
    assert run.code == 3, str(run)
    line = one_line(run.stderr)
    assert line.startswith("flowctl: warning: ") and f"no worker polls task queue '{queue}'" in line, line
    assert "for workflow and activity tasks" in line and f"flowctl worker --task-queue {queue}" in line, line
    rows = run.json()
    assert [(r["task_queue"], r["type"], r["polled"], r["pollers"]) for r in rows] == [
        (queue, "workflow", False, []),
        (queue, "activity", False, []),
    ]
    # The dev server reports the backlog (refreshed every few seconds): a started order's first task waits.
    order_id = uid()
    assert (
        flowctl("start", "order", "-i", json.dumps(order_input(order_id)), env={"FLOWCTL_TASK_QUEUE": queue}).code == 0
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            run = flowctl("workers", "--task-queue", queue, "-o", "json")
            backlog = run.json()[0]["backlog"]
            if backlog["approximate_count"] == 1:
                break
            assert time.monotonic() < deadline, f"no backlog reported: {run}"
            time.sleep(1)
        assert run.code == 3 and backlog["approximate_age_seconds"] > 0, str(run)
        assert "1 workflow task(s) wait, the oldest" in one_line(run.stderr), run.stderr
        text = flowctl("workers", "--task-queue", queue)
        assert text.code == 3 and text.stdout.splitlines()[0].split() == [
            "TASK_QUEUE", "TYPE", "IDENTITY", "LAST_POLL", "BACKLOG", "BACKLOG_AGE",
        ], text.stdout  # fmt: skip
        assert text.stdout.splitlines()[1].split()[:5] == [queue, "workflow", "-", "-", "1"], text.stdout
    finally:
        assert flowctl("terminate", f"order-{order_id}", "--reason", "cleanup").code == 0


def test_a_running_worker_is_listed_with_its_identity(stack: Stack) -> None:
    assert stack.worker is not None
    identity = f"{stack.worker.pid}@{socket.gethostname()}"
    run = stack.cli("workers", "-o", "json")  # the configured task queue
    assert run.code == 0 and run.stderr == "", str(run)
    rows = run.json()
    assert [(r["task_queue"], r["type"], r["polled"]) for r in rows] == [
        (stack.task_queue, "workflow", True),
        (stack.task_queue, "activity", True),
    ]
    for row in rows:
        mine = [p for p in row["pollers"] if p["identity"] == identity]
        assert mine and mine[0]["polling"] and mine[0]["seconds_since"] < POLL_WINDOW.total_seconds(), row
        datetime.fromisoformat(mine[0]["last_access_time"])
    lines = stack.cli("workers", "-o", "jsonl")
    assert lines.code == 0 and [json.loads(line)["type"] for line in lines.stdout.splitlines()] == TYPES
    text = stack.cli("workers")
    assert text.code == 0 and sum(identity in line for line in text.stdout.splitlines()) == 2, text.stdout


TYPES = ["workflow", "activity"]


def test_wait_ready_returns_once_a_worker_started_after_it_polls(flowctl: Cli) -> None:
    queue = uid("tq-ready-")
    waiting = subprocess.Popen(
        [FLOWCTL, "workers", "--wait-ready", "--timeout", "90s", "-o", "json"],
        env={**flowctl.env, "FLOWCTL_TASK_QUEUE": queue},
        cwd=flowctl.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    worker = None
    try:
        time.sleep(2)
        assert waiting.poll() is None, waiting.communicate()  # nobody polls yet: still waiting
        worker = flowctl.worker(env={"FLOWCTL_TASK_QUEUE": queue})
        ready_at = time.monotonic()
        out, err = waiting.communicate(timeout=30)
        assert waiting.returncode == 0, err
        assert time.monotonic() - ready_at < 5  # asked once a second
        rows = json.loads(out)
        assert all(r["polled"] for r in rows) and {r["type"] for r in rows} == set(TYPES)
        assert all(p["identity"].startswith(f"{worker.pid}@") for r in rows for p in r["pollers"]), rows
        assert err == b""  # -o json: no progress line
    finally:
        if waiting.poll() is None:
            waiting.kill()
        if worker is not None:
            assert stop_process(worker) == 0


def test_wait_ready_exits_20_at_its_timeout_when_nobody_polls(flowctl: Cli) -> None:
    queue = uid("tq-never-")
    began = time.monotonic()
    run = flowctl("workers", "--task-queue", queue, "--wait-ready", "--timeout", "2s")
    took = time.monotonic() - began
    assert run.code == 20, str(run)
    assert 2 <= took < 15, took
    waiting, warned = run.stderr.splitlines()
    assert waiting == f"waiting for a worker to poll task queue '{queue}' (asking the server every 1s)"
    assert warned.startswith(
        f"flowctl: warning: no worker polls task queue '{queue}' for workflow and activity tasks within 2s"
    )
    assert [line.split()[:3] for line in run.stdout.splitlines()[1:]] == [[queue, t, "-"] for t in TYPES]
    once = flowctl("workers", "--task-queue", queue, "--wait-ready", "--timeout", "0", "-o", "json")
    assert once.code == 20 and [r["polled"] for r in once.json()] == [False, False], str(once)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_during_wait_ready_says_what_it_was_doing(flowctl: Cli, sig: int, code: int) -> None:
    queue = uid("tq-stop-")
    proc = subprocess.Popen(
        [FLOWCTL, "workers", "--task-queue", queue, "--wait-ready"],
        env=flowctl.env,
        cwd=flowctl.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline().startswith("waiting for a worker")  # the first look is done
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert out == "" and one_line(err).endswith(
        f"waiting for a worker to poll task queue '{queue}'; nothing was changed"
    )


def test_a_closed_stdout_ends_workers_with_141(flowctl: Cli) -> None:
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [FLOWCTL, "workers"], stdout=write, stderr=subprocess.PIPE, env=flowctl.env, cwd=flowctl.cwd, timeout=60
        )
    finally:
        os.close(write)
    assert proc.returncode == 141 and proc.stderr == b"", proc


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--task-queue", ""], "--task-queue: String should have at least 1 character"),
        (["--task-queue", "q" * 201], "--task-queue: String should have at most 200 characters"),
        (["--task-queue"], "requires an argument"),
        (["--timeout", "5s"], "--timeout goes with --wait-ready"),
        (["--wait-ready", "--timeout", "5 parsecs"], "--timeout: '5 parsecs' is not a duration"),
        (["--wait-ready", "--timeout", "-1s"], "is not a duration"),
        (["--wait-ready=yes"], "does not take a value"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2_before_anything_is_sent(local_cli: Cli, args: list[str], said: str) -> None:
    run = local_cli("workers", *args)  # nothing listens there: reaching for the server would be exit 5
    assert run.code == 2 and said in one_line(run.stderr), str(run)


def test_workers_with_the_server_down_exit_5(local_cli: Cli) -> None:
    for args in ([], ["--wait-ready", "--timeout", "3s"], ["-o", "json"]):
        run = local_cli("workers", *args)
        assert run.code == 5 and "cannot reach Temporal" in one_line(run.stderr), str(run)


def test_help_says_how_long_a_poll_counts() -> None:
    proc = subprocess.run(
        [FLOWCTL, "workers", "--help"], capture_output=True, text=True, env={"COLUMNS": "400", "NO_COLOR": "1"}
    )
    assert proc.returncode == 0 and f"under {POLL_WINDOW.seconds}s old" in proc.stdout, proc.stdout


def test_polled_by_counts_only_polls_newer_than_the_server_knew() -> None:
    """A restarted worker often has its predecessor's identity (pid 1 in a container, same pod
    name): the predecessor's poll, still listed, must not make the new one ready."""
    now = datetime.now(UTC)

    def rows(*pollers: Poller) -> list[QueueType]:
        return [QueueType("q", t, list(pollers), None, at=now) for t in TYPES]

    old = Poller("1@pod", now - timedelta(seconds=5))
    assert not polled_by(rows(old), "1@pod", before=rows(old))
    assert polled_by(rows(Poller("1@pod", now)), "1@pod", before=rows(old))
    assert polled_by(rows(Poller("1@pod", now)), "1@pod", before=[])
    assert not polled_by(rows(Poller("2@pod", now)), "1@pod", before=[])
    one_type = [QueueType("q", "workflow", [Poller("1@pod", now)], None, at=now), rows()[1]]
    assert not polled_by(one_type, "1@pod", before=[])  # both types, or not ready


def test_a_worker_stopped_a_while_ago_is_shown_as_such_and_named_in_the_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server lists a stopped worker for minutes: past POLL_WINDOW it no longer counts."""
    import io

    monkeypatch.setenv("COLUMNS", "200")  # a row a line, whatever the width of the terminal running the tests

    from flowctl.cli.workers_cmd import table, warnings
    from flowctl.ops.taskqueues import Backlog
    from flowctl.output import Output

    now = datetime.now(UTC)
    gone = Poller("7@old-pod", now - POLL_WINDOW - timedelta(seconds=45))
    waiting = Backlog(approximate_count=4, approximate_age=timedelta(seconds=130), add_rate=0.1, dispatch_rate=0.0)
    rows = [QueueType("q", "workflow", [gone], waiting, at=now), QueueType("q", "activity", [], None, at=now)]
    assert [row.as_dict()["polled"] for row in rows] == [False, False]
    assert rows[0].as_dict()["pollers"][0]["polling"] is False
    assert warnings(rows, "q") == [
        "no worker polls task queue 'q' for workflow and activity tasks; 7@old-pod last polled 2m ago; "
        "4 workflow task(s) wait, the oldest 2m10s (start one: flowctl worker)"
    ]
    stdout = io.StringIO()
    table(Output(stdout=stdout, stderr=io.StringIO(), no_color=True), rows)
    workflow, activity = stdout.getvalue().splitlines()[1:]
    assert (
        "7@old-pod" in workflow and "(2m ago, stopped polling)" in workflow and workflow.split()[-2:] == ["4", "2m10s"]
    )
    assert activity.split() == ["q", "activity", "-", "-", "-", "-"]


def test_a_worker_that_cannot_reach_the_server_lets_its_health_port_go(local_cli: Cli) -> None:
    port = free_port()
    run = local_cli("worker", "--health-port", str(port), timeout=60)
    assert run.code == 5 and "cannot reach Temporal" in one_line(run.stderr), str(run)
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # released


@pytest.mark.slow
def test_health_port_answers_through_start_ready_and_drain(flowctl: Cli, tmp_path: Path) -> None:
    queue = uid("tq-health-")
    port = free_port()
    env = {"FLOWCTL_TASK_QUEUE": queue, "FLOWCTL_SERVICES__LOCAL__LATENCY": "3s"}
    log = tmp_path / "worker.log"
    worker = spawn_worker(flowctl, "--health-port", str(port), "--shutdown-grace", "30s", env=env, log=log)
    order_id = uid()
    try:
        seen: list[tuple[int, str]] = []
        deadline = time.monotonic() + 60
        while not seen or seen[-1][0] != 200:
            status, body = probe(port, "/readyz")
            if status and (not seen or seen[-1] != (status, body["status"])):
                seen.append((status, body["status"]))
            assert time.monotonic() < deadline and worker.poll() is None, (seen, log.read_text())
            if status == 503:
                assert probe(port, "/livez")[0] == 200
            time.sleep(0.02)
        assert seen == [(503, "starting"), (200, "ready")], seen  # bound before anything else starts
        _, body = probe(port, "/readyz")
        identity = body["identity"]
        assert identity.startswith(f"{worker.pid}@") and body["task_queue"] == queue, body
        listed = flowctl("workers", "--task-queue", queue, "-o", "json")
        assert listed.code == 0 and all(identity in [p["identity"] for p in r["pollers"]] for r in listed.json())
        assert f"health: http://127.0.0.1:{port}/readyz" in log.read_text()

        # What is not a probe is answered, and leaves the log alone.
        assert raw(port, b"\x16\x03\x01\x00garbage\r\n\r\n").startswith(b"HTTP/1.0 400")
        assert raw(port, b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.0 400")
        assert (
            raw(port, b"POST /readyz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            == b"HTTP/1.1 405 Method Not Allowed"
        )
        assert raw(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == b"HTTP/1.1 404 Not Found"
        assert raw(port, b"HEAD /livez HTTP/1.1\r\nHost: x\r\n\r\n") == b"HTTP/1.1 200 OK"
        assert "Traceback" not in log.read_text() and "aiohttp" not in log.read_text(), log.read_text()

        # SIGTERM with an activity running: not ready while it drains, still live, then gone.
        started = flowctl("start", "order", "-i", json.dumps(order_input(order_id)), env=env)
        assert started.code == 0, str(started)
        while "EVENT_TYPE_ACTIVITY_TASK_STARTED" not in flowctl("history", f"order-{order_id}", "-o", "jsonl").stdout:
            assert time.monotonic() < deadline, "the first activity never started"
            time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert probe(port, "/readyz") == (
            503,
            {"status": "draining", "task_queue": queue, "identity": identity,
             "reason": "stopping: running activities are given their grace period"},
        )  # fmt: skip
        assert probe(port, "/livez")[0] == 200
        worker.send_signal(signal.SIGTERM)  # a second one changes nothing: the drain goes on
        time.sleep(0.3)
        assert probe(port, "/readyz")[1]["status"] == "draining" and worker.poll() is None
        assert worker.wait(timeout=30) == 0, log.read_text()
        assert probe(port, "/livez") == (0, {})  # closed with the process
        history = flowctl("history", f"order-{order_id}", "-o", "jsonl").stdout
        assert "EVENT_TYPE_ACTIVITY_TASK_COMPLETED" in history  # the drain let it finish
    finally:
        stop_process(worker, signal.SIGKILL)
        flowctl("terminate", f"order-{order_id}", "--reason", "cleanup")


def test_a_health_port_in_use_is_refused_before_the_worker_starts(flowctl: Cli, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        began = time.monotonic()
        run = flowctl("worker", "--health-port", str(port), timeout=60)
        assert run.code == 2, str(run)
        assert one_line(run.stderr) == (
            f"flowctl: error: --health-port {port} on 127.0.0.1: already in use "
            "(choose another port (worker.health_port) or address (--health-host))"
        )
        assert time.monotonic() - began < 10 and "worker ready" not in run.stderr
        as_json = flowctl("-o", "json", "worker", "--health-port", str(port))
        assert as_json.code == 2 and json.loads(as_json.stderr)["error"]["code"] == 2
    other = free_port()
    for args, said in (
        (["--health-port", str(other), "--metrics-port", str(other)], "--health-port and --metrics-port are both"),
        (["--health-port", "65536"], "--health-port"),
        (["--health-port", "-1"], "--health-port"),
        (["--health-port", "http"], "--health-port"),
        (["--health-port", str(other), "--health-host", "example.com"], "--health-host: must be an IP address"),
        (["--health-host", "0.0.0.0"], "--health-host needs --health-port"),
    ):
        refused = flowctl("worker", *args)
        assert refused.code == 2 and said in one_line(refused.stderr), str(refused)
    if os.geteuid() != 0:  # root may bind a privileged port
        refused = flowctl("worker", "--health-port", "80")
        assert refused.code == 2 and "Permission denied" in one_line(refused.stderr), str(refused)
    config = flowctl("worker", env={"FLOWCTL_WORKER__HEALTH_PORT": "99999"})
    assert config.code == 2 and "health_port" in one_line(config.stderr), str(config)


def test_the_last_health_port_given_wins_and_port_0_takes_any(flowctl: Cli) -> None:
    queue = uid("tq-any-")
    worker = flowctl.worker("--health-port", "1", "--health-port", "0", env={"FLOWCTL_TASK_QUEUE": queue})
    try:
        line = next(line for line in worker.log.read_text().splitlines() if "worker ready" in line)  # type: ignore[attr-defined]
        port = int(line.rsplit("health: http://127.0.0.1:", 1)[1].split("/")[0])
        assert port > 1024
        deadline = time.monotonic() + 30
        while probe(port, "/readyz")[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        assert stop_process(worker) == 0


@pytest.mark.slow
def test_readyz_is_503_while_the_server_is_away_and_200_once_it_is_back(tmp_path: Path) -> None:
    """A worker that cannot reach the server polls nothing: not ready, still live; ready again after."""
    from conftest import isolated_env, write_config

    cli = Cli(isolated_env(tmp_path, write_config(tmp_path, port=free_port(), task_queue="away")), tmp_path)
    assert cli("server", "start", timeout=120).code == 0
    port = free_port()
    try:
        worker = cli.worker("--health-port", str(port))
        log: Path = worker.log  # type: ignore[attr-defined]

        def readiness(want: str, within: float = 30) -> None:
            deadline = time.monotonic() + within
            while (state := probe(port, "/readyz"))[1].get("status") != want:
                assert time.monotonic() < deadline, (want, state, log.read_text())
                time.sleep(0.2)

        try:
            readiness("ready")
            assert cli("server", "stop").code == 0
            readiness("unreachable")
            assert probe(port, "/readyz")[0] == 503 and probe(port, "/livez")[0] == 200
            assert cli("server", "start", timeout=120).code == 0
            readiness("ready", within=60)
            assert worker.poll() is None
        finally:
            assert stop_process(worker) == 0
    finally:
        cli("server", "stop")
