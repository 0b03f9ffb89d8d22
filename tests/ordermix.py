"""The order mix of the reliability tests and the checks of how each order must end, against
the local services' SQLite ledger or any other services' records read into the same books."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from conftest import Cli, order_input


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
        time.sleep(2)  # each look is two flowctl processes; a second more per look costs little here


def assert_every_order_ended_as_expected(
    flowctl: Cli,
    queue: str,
    books: dict[str, dict[str, list[str]]] | Path,
    prefix: str,
    count: int,
    cancelled: frozenset[int] = frozenset(),
) -> None:
    """Each order's end and what the services recorded (`books`, or the local services' SQLite
    file): nothing lost, nothing done twice; a cancelled order keeps nothing."""
    statuses = flow_statuses(flowctl, queue)
    assert len(statuses) == count
    for wid, row in statuses.items():
        i = int(wid.rsplit("-", 1)[1])
        if i in cancelled:
            assert (row["status"], row["flow_status"]) == ("cancelled", "cancelled"), (wid, row)
            continue
        assert row["status"] == "completed", (wid, row)
        assert row["flow_status"] == expected_end(i), (wid, row["flow_status"], expected_end(i))

    assert_books(sqlite_books(books, prefix) if isinstance(books, Path) else books, count, prefix, cancelled)


def sqlite_books(db: Path, prefix: str) -> dict[str, dict[str, list[str]]]:
    """What the local services recorded for each order of `prefix`: per table, each row's status."""
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
    return by_order


def assert_books(
    by_order: dict[str, dict[str, list[str]]], count: int, prefix: str, cancelled: frozenset[int] = frozenset()
) -> None:
    """Nothing lost, nothing done twice, per order: a completed one kept one charge and one shipment,
    a compensated one kept nothing, a rejected one was refunded once, a cancelled one keeps nothing."""
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
