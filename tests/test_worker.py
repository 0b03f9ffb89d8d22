"""`flowctl worker`: ready line, graceful shutdown, several workers on one queue, setup checks."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from conftest import FLOWCTL, Cli, Stack, order_input, stop_process, uid

from flowctl_workflows.attributes import TYPES as SEARCH_ATTRIBUTES


def history_events(flowctl: Cli, workflow_id: str) -> list[dict[str, object]]:
    run = flowctl("history", workflow_id, "-o", "jsonl")
    assert run.code == 0, str(run)
    return [json.loads(line) for line in run.stdout.splitlines()]


@pytest.mark.slow
def test_sigterm_lets_running_activities_finish(flowctl: Cli) -> None:
    queue = uid("tq-grace-")
    env = {"FLOWCTL_TASK_QUEUE": queue, "FLOWCTL_SERVICES__LOCAL__LATENCY": "3s"}
    worker = flowctl.worker("--shutdown-grace", "20s", env=env)
    order_id = uid()
    wid = f"order-{order_id}"
    started = flowctl("start", "order", "-i", json.dumps(order_input(order_id)), env=env)
    assert started.code == 0, str(started)
    deadline = time.monotonic() + 20
    while not any(e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_STARTED" for e in history_events(flowctl, wid)):
        assert time.monotonic() < deadline, "the first activity never started"
        time.sleep(0.2)
    sent_at = time.monotonic()
    code = stop_process(worker, signal.SIGTERM)
    took = time.monotonic() - sent_at
    log = worker.log.read_text()  # type: ignore[attr-defined]
    assert code == 0, log
    assert "worker stopped" in log
    assert took < 20
    types = [e["eventType"] for e in history_events(flowctl, wid)]
    assert "EVENT_TYPE_ACTIVITY_TASK_COMPLETED" in types  # finished, not abandoned
    assert "EVENT_TYPE_ACTIVITY_TASK_FAILED" not in types and "EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT" not in types
    # A new worker picks up where the old one stopped; the reservation happened once.
    worker = flowctl.worker(env={"FLOWCTL_TASK_QUEUE": queue})
    try:
        result = flowctl("result", wid, "--timeout", "60s", "-o", "json")
        assert result.code == 0, str(result)
    finally:
        stop_process(worker)
    book = flowctl("ledger", "--order", order_id, "-o", "json").json()
    assert len(book["reservations"]) == 1 and len(book["charges"]) == 1


@pytest.mark.slow
def test_two_workers_share_one_queue(flowctl: Cli) -> None:
    queue = uid("tq-share-")
    env = {"FLOWCTL_TASK_QUEUE": queue}
    workers = [flowctl.worker(env=env), flowctl.worker(env=env)]
    try:
        ids = []
        for _ in range(16):
            order_id = uid()
            ids.append(f"order-{order_id}")
            assert flowctl("start", "order", "-i", json.dumps(order_input(order_id)), env=env).code == 0
        identities = set()
        for wid in ids:
            assert flowctl("result", wid, "--timeout", "60s").code == 0
            for event in history_events(flowctl, wid):
                attrs = event.get("workflowTaskStartedEventAttributes") or event.get(
                    "activityTaskStartedEventAttributes"
                )
                if isinstance(attrs, dict):
                    identities.add(attrs["identity"])
        pids = {str(w.pid) for w in workers}
        assert {identity.split("@")[0] for identity in identities} == pids
    finally:
        for worker in workers:
            assert stop_process(worker) == 0


def cache_metrics(port: int) -> dict[str, float]:
    """The worker's workflow-cache figures from its Prometheus endpoint."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        line.split("{")[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(("temporal_sticky_cache_size{", "temporal_sticky_cache_total_forced_eviction{"))
    }


@pytest.mark.slow
def test_the_workflow_cache_bounds_what_a_worker_holds_and_evicted_workflows_finish(flowctl: Cli) -> None:
    """--max-cached-workflows caps the workflows a worker keeps in memory; the ones it had to
    let go are replayed from their history when their signal comes, and finish."""
    from conftest import free_port, wait_for_status

    queue = uid("tq-cache-")
    env = {"FLOWCTL_TASK_QUEUE": queue}
    port = free_port()
    worker = flowctl.worker("--max-cached-workflows", "2", "--metrics-port", str(port), env=env)
    try:
        ids = []
        for _ in range(5):
            user_id = uid("cache-")
            data = {"user_id": user_id, "email": f"{user_id}@example.com", "name": "Lin"}
            run = flowctl("start", "onboarding", "-i", json.dumps(data), "-o", "json", env=env)
            assert run.code == 0, str(run)
            ids.append(run.json()["workflow_id"])
        for wid in ids:
            wait_for_status(flowctl, wid, "awaiting_verification")
        cache = cache_metrics(port)
        assert cache["temporal_sticky_cache_size"] == 2, cache
        assert cache["temporal_sticky_cache_total_forced_eviction"] >= 3, cache
        for wid in ids:
            assert flowctl("signal", wid, "verify-email").code == 0
        for wid in ids:
            result = flowctl("result", wid, "--timeout", "60s", "-o", "json")
            assert result.code == 0 and result.json()["result"]["verified_by"] == "user", str(result)
        assert cache_metrics(port)["temporal_sticky_cache_size"] <= 2
    finally:
        assert stop_process(worker) == 0


def test_worker_refuses_a_namespace_without_search_attributes(stack: Stack, tmp_path: object) -> None:
    """On a bare server the worker exits 3 naming the fix; `server setup` fixes it."""
    from pathlib import Path

    from conftest import TEMPORAL, free_port, isolated_env, write_config

    root = Path(str(tmp_path))
    port = free_port()
    server = subprocess.Popen(
        [TEMPORAL, "server", "start-dev", "--headless", "--port", str(port), "--log-level", "error"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        cli = Cli(isolated_env(root, write_config(root, port=port, task_queue="bare")), root)
        deadline = time.monotonic() + 60
        while cli("list").code != 0:
            assert time.monotonic() < deadline, "bare dev server did not come up"
            time.sleep(0.3)
        run = subprocess.run([FLOWCTL, "worker"], env=cli.env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 3, run.stderr
        assert "FlowKind" in run.stderr and "flowctl server setup" in run.stderr
        setup = cli("server", "setup", "-o", "json")
        assert setup.code == 0, str(setup)
        assert set(setup.json()["added"]) == set(SEARCH_ATTRIBUTES)
        again = cli("server", "setup", "-o", "json")
        assert again.code == 0 and again.json()["added"] == []
        worker = cli.worker()
        order_id = uid()
        done = cli("start", "order", "-i", json.dumps(order_input(order_id)), "--wait", "--timeout", "60s")
        assert done.code == 0, str(done)
        assert stop_process(worker) == 0
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_worker_log_escapes_data_and_folds_only_cores_retries() -> None:
    """A workflow id another client chose (`order-X4` + ESC[31m) coloured the log; Core's poll
    retries, named by Core's target, were not folded while the server was away."""
    import logging

    from flowctl.worker import OUTAGE, PrintableFormatter

    def record(name: str, message: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.WARNING, __file__, 1, message, None, None)

    shown = PrintableFormatter("%(name)s: %(message)s").format(record("temporalio.worker", "ID order-X4\x1b[31m\u2028"))
    assert shown == "temporalio.worker: ID order-X4\\x1b[31m\\u2028", shown
    core = "temporal-sdk_core::temporalio_client::retry"
    failed = "gRPC call poll retried 6 times {'error': 'Status { code: Unavailable, message: \"tcp connect error\" }'}"
    OUTAGE.address = "localhost:7233"
    try:
        first = record(core, failed)  # before the worker's own check noticed: this warning says so
        assert OUTAGE.filter(first) and OUTAGE.away
        assert first.getMessage().startswith("Temporal at localhost:7233 stopped answering (tcp connect error)")
        assert not OUTAGE.filter(record(core, failed))  # the next ones are folded
        assert OUTAGE.filter(record("temporalio.worker._workflow", "Failed activation"))  # the SDK's own: kept
        assert OUTAGE.folded == 2
    finally:
        OUTAGE.away, OUTAGE.folded = False, 0
