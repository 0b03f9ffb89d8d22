"""A killed worker loses nothing: every order reaches its expected end, the ledger balances."""

from __future__ import annotations

import json
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import Cli, Stack, stop_process, uid
from ordermix import assert_every_order_ended_as_expected, flow_statuses, make_order, wait_until_done

ORDERS = 200
KILLS = 2


@pytest.mark.slow
def test_worker_killed_twice_loses_nothing_and_does_nothing_twice(flowctl: Cli, stack: Stack, tmp_path: Path) -> None:
    queue = uid("tq-crash-")
    prefix = uid("k")
    env = {
        "FLOWCTL_TASK_QUEUE": queue,
        "FLOWCTL_SERVICES__LOCAL__TRANSIENT_FAILURE_RATE": "0.2",
        "FLOWCTL_SERVICES__LOCAL__LATENCY": "0.5s",  # so the kills land while activities run
    }
    orders = tmp_path / "orders.jsonl"
    orders.write_text("".join(json.dumps(make_order(prefix, i)) + "\n" for i in range(ORDERS)))
    assert flowctl("start", "order", "--from", str(orders), env=env).code == 0

    worker = flowctl.worker(env=env)
    decided: set[str] = set()
    for _ in range(KILLS):
        time.sleep(2)
        in_flight = [w for w, row in flow_statuses(flowctl, queue).items() if row["status"] == "running"]
        assert len(in_flight) > ORDERS // 4, f"only {len(in_flight)} in flight: the kill would prove little"
        print(f"SIGKILL with {len(in_flight)} of {ORDERS} orders in flight")
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=30) == -signal.SIGKILL
        worker = flowctl.worker(env=env)
    try:
        wait_until_done(flowctl, queue, prefix, decided)
    finally:
        assert stop_process(worker) == 0

    assert_every_order_ended_as_expected(flowctl, queue, stack.ledger_db, prefix, ORDERS)


@pytest.mark.slow
def test_cancels_at_random_moments_while_the_worker_is_killed_keep_the_ledger_exact(
    flowctl: Cli, stack: Stack, tmp_path: Path
) -> None:
    """A third of the orders cancelled at random moments (queued, mid-step, held, mid-compensation)
    while the worker is SIGKILLed once: every cancelled order keeps nothing, the others end as usual."""
    queue = uid("tq-cancel-")
    prefix = uid("c")
    env = {
        "FLOWCTL_TASK_QUEUE": queue,
        "FLOWCTL_SERVICES__LOCAL__TRANSIENT_FAILURE_RATE": "0.2",
        "FLOWCTL_SERVICES__LOCAL__LATENCY": "0.5s",
    }
    seed = random.randrange(1 << 30)
    print(f"cancel moments drawn with seed {seed}")
    moments = random.Random(seed)
    doomed = {i: moments.uniform(0, 10) for i in range(0, ORDERS, 3)}
    orders = tmp_path / "orders.jsonl"
    orders.write_text("".join(json.dumps(make_order(prefix, i)) + "\n" for i in range(ORDERS)))
    assert flowctl("start", "order", "--from", str(orders), env=env).code == 0
    worker = flowctl.worker(env=env)
    began = time.monotonic()

    def cancel(i: int) -> tuple[int, int]:
        time.sleep(max(0.0, began + doomed[i] - time.monotonic()))
        return i, flowctl("cancel", f"order-{prefix}-{i}", "--reason", "random", env=env).code

    decided: set[str] = set()
    with ThreadPoolExecutor(6) as pool:
        pending = [pool.submit(cancel, i) for i in sorted(doomed, key=lambda i: doomed[i])]
        time.sleep(4)
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=30) == -signal.SIGKILL
        worker = flowctl.worker(env=env)
        codes = dict(future.result() for future in pending)
    try:
        wait_until_done(flowctl, queue, prefix, decided)
    finally:
        assert stop_process(worker) == 0
    assert set(codes.values()) <= {0, 4}, codes  # 4: it had already ended
    cancelled = frozenset(i for i, code in codes.items() if code == 0)
    print(f"{len(cancelled)} of {len(doomed)} cancels landed on a running order")
    assert len(cancelled) > len(doomed) // 2
    assert_every_order_ended_as_expected(flowctl, queue, stack.ledger_db, prefix, ORDERS, cancelled)


@pytest.mark.slow
def test_server_restarted_mid_run_loses_nothing(tmp_path: Path) -> None:
    """The embedded server stopped and started again (its SQLite file persists) while orders run."""
    from conftest import free_port, isolated_env, write_config

    queue, prefix, count = "restart", uid("r"), 100
    port = free_port()
    cli = Cli(isolated_env(tmp_path, write_config(tmp_path, port=port, task_queue=queue)), tmp_path)
    env = {"FLOWCTL_SERVICES__LOCAL__TRANSIENT_FAILURE_RATE": "0.2", "FLOWCTL_SERVICES__LOCAL__LATENCY": "0.5s"}
    assert cli("server", "start", timeout=120).code == 0
    worker = None
    try:
        orders = tmp_path / "orders.jsonl"
        orders.write_text("".join(json.dumps(make_order(prefix, i)) + "\n" for i in range(count)))
        assert cli("start", "order", "--from", str(orders)).code == 0
        worker = cli.worker(env=env)
        time.sleep(2)
        in_flight = [w for w, row in flow_statuses(cli, queue).items() if row["status"] == "running"]
        assert len(in_flight) > count // 4, f"only {len(in_flight)} in flight"
        assert cli("server", "stop").code == 0
        print(f"server stopped with {len(in_flight)} of {count} orders in flight")
        assert cli("server", "status").code == 5
        time.sleep(9)  # long enough for Core to warn of polls retried six times
        assert cli("server", "start", timeout=120).code == 0
        wait_until_done(cli, queue, prefix, set(), timeout=300)
        assert worker.poll() is None, "the worker should ride out the restart"
        # What it logged while the server was away is in the log's one format, without colour codes.
        log = worker.log.read_text()  # type: ignore[attr-defined]
        assert "\x1b[" not in log, log[-2000:]
        assert all(line.startswith(("20", "flowctl worker")) for line in log.splitlines() if line), log[-2000:]
        # It says once that the server went away and once that it came back, folding Core's retries.
        assert log.count("stopped answering") == 1 and log.count("answers again: polling resumed") == 1, log[-3000:]
        assert "gRPC call" not in log and "(0 retry warnings folded)" not in log, log[-3000:]
        assert_every_order_ended_as_expected(cli, queue, tmp_path / "ledger.db", prefix, count)
    finally:
        if worker is not None:
            stop_process(worker)
        cli("server", "stop")
