"""`flowctl workers` (who polls, what waits, `--wait-ready`), against a real dev server and real workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import FLOWCTL, Cli, Stack, order_input, stop_process, uid

from flowctl.ops.taskqueues import POLL_WINDOW, Poller, QueueType


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


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


def test_a_worker_stopped_a_while_ago_is_shown_as_such_and_named_in_the_warning() -> None:
    """The server lists a stopped worker for minutes: past POLL_WINDOW it no longer counts."""
    import io

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
