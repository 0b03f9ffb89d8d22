"""The `local` reference services: idempotency, documented failures, a readable ledger."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flowctl_workflows.services import UNDONE, BusinessError, TransientError
from flowctl_workflows.services.local import SEED_STOCK, LocalServices, read_ledger


@pytest.fixture
def services(tmp_path: Path) -> LocalServices:
    return LocalServices(tmp_path / "ledger.db")


def reserve(services: LocalServices, key: str, sku: str = "SKU-1", quantity: int = 2) -> dict[str, object]:
    payload = {"idempotency_key": key, "order_id": "o1", "items": [{"sku": sku, "quantity": quantity}]}
    return services.call_sync("inventory.reserve", payload)


def charge(services: LocalServices, key: str, card: str = "tok_visa") -> dict[str, object]:
    payload = {"idempotency_key": key, "order_id": f"o-{key}", "customer_id": "c", "amount_cents": 500, "card": card}
    return services.call_sync("payment.charge", payload)


def test_repeated_calls_change_nothing_twice(services: LocalServices, tmp_path: Path) -> None:
    assert reserve(services, "k1") == reserve(services, "k1")
    assert charge(services, "c1") == charge(services, "c1")
    ledger = read_ledger(tmp_path / "ledger.db")
    assert len(ledger["charges"]) == 1 and len(ledger["reservations"]) == 1
    stock = {row["sku"]: row["available"] for row in ledger["stock"]}
    assert stock["SKU-1"] == SEED_STOCK["SKU-1"] - 2
    services.call_sync("inventory.release", {"idempotency_key": "r1", "reservation_key": "k1"})
    services.call_sync("inventory.release", {"idempotency_key": "r2", "reservation_key": "k1"})
    stock = {row["sku"]: row["available"] for row in read_ledger(tmp_path / "ledger.db")["stock"]}
    assert stock["SKU-1"] == SEED_STOCK["SKU-1"]


def test_refund_of_a_charge_never_taken_is_a_no_op(services: LocalServices, tmp_path: Path) -> None:
    with pytest.raises(BusinessError) as declined:
        charge(services, "c1", card="tok_declined")
    assert declined.value.code == "card_declined"
    with pytest.raises(BusinessError):  # the same key stays declined
        charge(services, "c1", card="tok_visa")
    answer = services.call_sync("payment.refund", {"idempotency_key": "u1", "charge_key": "c1"})
    assert answer["refunded"] is False
    assert read_ledger(tmp_path / "ledger.db")["refunds"] == []


def test_refund_happens_once(services: LocalServices, tmp_path: Path) -> None:
    charge(services, "c1")
    for key in ("u1", "u1", "u2"):
        services.call_sync("payment.refund", {"idempotency_key": key, "charge_key": "c1"})
    ledger = read_ledger(tmp_path / "ledger.db")
    assert len(ledger["refunds"]) == 1 and ledger["charges"][0]["status"] == "refunded"


def test_an_undone_step_is_refused_even_when_it_arrives_after_its_undo(services: LocalServices, tmp_path: Path) -> None:
    # The refund runs first (the charge was still in flight elsewhere): the charge then is refused.
    answer = services.call_sync("payment.refund", {"idempotency_key": "u1", "charge_key": "late"})
    assert answer["refunded"] is False
    with pytest.raises(BusinessError) as refused:
        charge(services, "late")
    assert refused.value.code == UNDONE and "payment.refund" in refused.value.message
    # A step done, undone, then asked again (a second run under the same keys) is refused too.
    reserve(services, "k1")
    services.call_sync("inventory.release", {"idempotency_key": "r1", "reservation_key": "k1"})
    with pytest.raises(BusinessError) as again:
        reserve(services, "k1")
    assert again.value.code == UNDONE
    ledger = read_ledger(tmp_path / "ledger.db")
    assert ledger["charges"] == [] and [r["status"] for r in ledger["reservations"]] == ["released"]


def test_one_order_keeps_one_charge_and_one_request_one_execution(services: LocalServices, tmp_path: Path) -> None:
    def charge_order(key: str) -> dict[str, object]:
        payload = {"idempotency_key": key, "order_id": "o1", "customer_id": "c", "amount_cents": 500}
        return services.call_sync("payment.charge", payload)

    charge_order("wf-a/charge")
    with pytest.raises(BusinessError) as second:
        charge_order("wf-b/charge")
    assert second.value.code == "already_charged"
    services.call_sync("payment.refund", {"idempotency_key": "wf-a/refund", "charge_key": "wf-a/charge"})
    charge_order("wf-c/charge")  # once the first is refunded, the order may be charged again
    execute = {"request_id": "R-1", "amount_cents": 100}
    services.call_sync("approvals.execute", {**execute, "idempotency_key": "x1"})
    with pytest.raises(BusinessError):
        services.call_sync("approvals.execute", {**execute, "idempotency_key": "x2"})
    revoked = services.call_sync("approvals.revoke", {"idempotency_key": "v1", "execution_key": "x1"})
    assert revoked == {"revoked": True}
    ledger = read_ledger(tmp_path / "ledger.db")
    assert [c["status"] for c in ledger["charges"]] == ["refunded", "captured"]
    assert [e["status"] for e in ledger["executions"]] == ["revoked"]


def test_out_of_stock_and_unknown_sku(services: LocalServices) -> None:
    with pytest.raises(BusinessError) as out:
        reserve(services, "k1", sku="SKU-OUT")
    assert out.value.code == "out_of_stock"
    with pytest.raises(BusinessError) as unknown:
        reserve(services, "k2", sku="SKU-NOPE")
    assert unknown.value.code == "unknown_sku"


def test_flaky_card_fails_twice_then_succeeds(services: LocalServices, tmp_path: Path) -> None:
    for _ in range(2):
        with pytest.raises(TransientError):
            charge(services, "c1", card="tok_flaky")
    charge(services, "c1", card="tok_flaky")
    assert len(read_ledger(tmp_path / "ledger.db")["charges"]) == 1


def test_injected_failures_never_duplicate_work(tmp_path: Path) -> None:
    """With lost answers and concurrent retries, each key still charges exactly once."""
    services = LocalServices(tmp_path / "ledger.db", transient_failure_rate=0.5)

    def until_done(key: str) -> int:
        attempts = 0
        while True:
            attempts += 1
            try:
                charge(services, key)
                return attempts
            except TransientError:
                continue

    with ThreadPoolExecutor(8) as pool:
        attempts = list(pool.map(until_done, [f"c{i % 40}" for i in range(160)]))
    assert sum(attempts) > 160  # failures were injected
    charges = read_ledger(tmp_path / "ledger.db")["charges"]
    assert len(charges) == 40 and len({c["charge_key"] for c in charges}) == 40


def test_async_call_and_missing_key(services: LocalServices) -> None:
    screen = {"idempotency_key": "f1", "order_id": "o1", "customer_id": "c", "total_cents": 100_000}
    answer = asyncio.run(services.call("fraud.screen", screen))
    assert answer["review"] is True
    with pytest.raises(BusinessError) as missing:
        services.call_sync("email.send", {"to": "a@b.c"})
    assert "idempotency_key" in missing.value.message
