"""A killed worker loses nothing: every order reaches its expected end, the ledger balances."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, Stack, order_input, stop_process, uid

ORDERS = 200
KILLS = 2


def expected_end(i: int) -> str:
    if i % 10 == 0:
        return "compensated"  # declined card
    if i % 10 == 1:
        return "completed"  # held for review, approved
    if i % 10 == 2:
        return "rejected"  # held for review, rejected
    return "completed"


def make_order(prefix: str, i: int) -> dict[str, Any]:
    if i % 10 == 0:
        return order_input(f"{prefix}-{i}", card="tok_declined")
    if i % 10 in (1, 2):
        return order_input(f"{prefix}-{i}", price=2000.0)
    return order_input(f"{prefix}-{i}", card="tok_flaky" if i % 10 == 3 else "tok_visa")


def decide_reviews(flowctl: Cli, prefix: str, decided: set[str]) -> None:
    run = flowctl("approvals", "-o", "json")
    if run.code != 0:
        return
    for row in run.json():
        wid = row["workflow_id"]
        if not wid.startswith(f"order-{prefix}-") or wid in decided:
            continue
        i = int(wid.rsplit("-", 1)[1])
        verb = ["approve", wid, "--as", "risk"] if i % 10 == 1 else ["reject", wid, "--as", "risk", "--comment", "no"]
        if flowctl(*verb).code == 0:
            decided.add(wid)


def flow_statuses(flowctl: Cli, queue: str) -> dict[str, dict[str, Any]]:
    run = flowctl("list", "--query", f"TaskQueue = '{queue}'", "--limit", "10000", "-o", "json")
    assert run.code == 0, str(run)
    return {row["workflow_id"]: row for row in run.json()}


def rows(db: Path, sql: str, *args: object) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


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


def wait_until_done(flowctl: Cli, queue: str, prefix: str, decided: set[str], timeout: float = 240) -> None:
    """Decide the reviews as they come up until no order on `queue` is running."""
    deadline = time.monotonic() + timeout
    while True:
        decide_reviews(flowctl, prefix, decided)
        statuses = flow_statuses(flowctl, queue)
        running = [wid for wid, row in statuses.items() if row["status"] == "running"]
        if statuses and not running:
            return
        assert time.monotonic() < deadline, f"{len(running)} still running, e.g. {running[:3]}"
        time.sleep(1)


def assert_every_order_ended_as_expected(
    flowctl: Cli, queue: str, db: Path, prefix: str, count: int, cancelled: frozenset[int] = frozenset()
) -> None:
    """Each order's end and its ledger: nothing lost, nothing done twice; a cancelled order keeps nothing."""
    statuses = flow_statuses(flowctl, queue)
    assert len(statuses) == count
    for wid, row in statuses.items():
        i = int(wid.rsplit("-", 1)[1])
        if i in cancelled:
            assert (row["status"], row["flow_status"]) == ("cancelled", "cancelled"), (wid, row)
            continue
        assert row["status"] == "completed", (wid, row)
        assert row["flow_status"] == expected_end(i), (wid, row["flow_status"], expected_end(i))

    like = f"{prefix}-%"
    charges = rows(db, "SELECT order_id, status FROM charges WHERE order_id LIKE ?", like)
    refunds = rows(db, "SELECT order_id FROM refunds WHERE order_id LIKE ?", like)
    shipments = rows(db, "SELECT order_id, status FROM shipments WHERE order_id LIKE ?", like)
    reservations = rows(db, "SELECT order_id, status FROM reservations WHERE order_id LIKE ?", like)
    emails = rows(db, "SELECT ref, template FROM outbox WHERE ref LIKE ?", like)
    by_order: dict[str, dict[str, list[str]]] = {}
    for table, found in (("charges", charges), ("refunds", refunds), ("shipments", shipments),
                         ("reservations", reservations), ("emails", emails)):  # fmt: skip
        for record in found:
            key = record["order_id"] if "order_id" in record.keys() else record["ref"]
            by_order.setdefault(key, {}).setdefault(table, []).append(
                record["status"]
                if "status" in record.keys()
                else record["template"]
                if "template" in record.keys()
                else "x"
            )
    for i in range(count):
        book = by_order.get(f"{prefix}-{i}", {})
        end = "cancelled" if i in cancelled else expected_end(i)
        if end == "cancelled":  # whatever it had done is undone, once
            assert set(book.get("charges", [])) <= {"refunded"}, (i, book)
            assert len(book.get("refunds", [])) == len(book.get("charges", [])), (i, book)
            assert set(book.get("reservations", [])) <= {"released"}, (i, book)
            assert set(book.get("shipments", [])) <= {"cancelled"}, (i, book)
        elif end == "completed":
            assert book.get("charges") == ["captured"], (i, book)  # exactly one kept charge
            assert book.get("shipments") == ["created"] and book.get("emails") == ["order_confirmation"], (i, book)
            assert book.get("reservations") == ["held"] and "refunds" not in book, (i, book)
        elif end == "compensated":
            assert "charges" not in book and "shipments" not in book and "emails" not in book, (i, book)
            assert book.get("reservations") == ["released"], (i, book)
        else:  # rejected after the charge: refunded once, stock released, nothing shipped
            assert book.get("charges") == ["refunded"] and book.get("refunds") == ["x"], (i, book)
            assert book.get("reservations") == ["released"] and "shipments" not in book, (i, book)


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
