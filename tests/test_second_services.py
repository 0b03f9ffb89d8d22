"""A second set of services, with routes, field names, nesting and units of its own, wired to
flowctl's workflows by a route table alone (no code): orders run end to end through a worker
over it, a refused retry included."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from conftest import Cli, Stack, order_input, start, stop_process, uid
from loopback import Answer, Seen, Service, serving

from flowctl_workflows.services.commands import COMMANDS

# Its own shape: an RPC-style mount, version 3, nested objects, amounts in micros.
ROUTES: dict[str, dict[str, Any]] = {
    "inventory.reserve": {
        "path": "stock/holds",
        "request": '{"ref": order_id, "skus": [items.sku], "counts": [items.quantity], "requestId": idempotency_key}',
        "answer": '{"reservation_key": hold.id, "lines": count}',
    },
    "inventory.release": {"method": "PUT", "path": "stock/holds/{holdId}", "params": '{"holdId": reservation_key}',
                          "request": '{"requestId": idempotency_key}', "answer": '{"released_lines": freed}'},
    "payment.charge": {
        "path": "payments",
        "request": '{"order": {"id": order_id, "customer": customer_id}, '
        '"money": {"micros": amount_cents * 10000, "currency": "EUR"}, "card": card, "requestId": idempotency_key}',
        "answer": '{"charge_id": payment.reference, "amount_cents": payment.micros / 10000}',
    },
}  # fmt: skip
# Every other command, as the same service set spells it: kebab-case paths, the key as requestId.
for name in COMMANDS:
    ROUTES.setdefault(name, {"path": "ops/" + name.replace(".", "-").replace("_", "-"),
                             "request": '$merge([$, {"requestId": idempotency_key}])'})  # fmt: skip

DEFAULT_ANSWERS: dict[str, dict[str, Any]] = {
    "fraud.screen": {"review": False}, "shipping.create": {"shipment_id": "shp-1"}, "email.send": {"message_id": "m-1"},
    "payment.refund": {"refunded": True}, "shipping.cancel": {"cancelled": True},
}  # fmt: skip


def always(body: dict[str, Any]) -> Callable[[Seen], Answer]:
    return lambda seen: (200, {}, body)


class Payments:
    """The second set's behaviour: idempotent on requestId, one payment per key, one 503 first."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.payments: dict[str, dict[str, Any]] = {}
        self.fail_next_payment = True
        service.answers["/healthz"] = lambda s: (200, {}, {"ok": True})
        service.answers["/rpc/v3/stock/holds"] = lambda s: (200, {}, {"hold": {"id": s.body["requestId"]},
                                                                     "count": len(s.body["skus"])})  # fmt: skip
        service.answers["/rpc/v3/payments"] = self.pay
        for name, answer in DEFAULT_ANSWERS.items():
            service.answers["/rpc/v3/" + ROUTES[name]["path"]] = always(answer)

    def pay(self, seen: Seen) -> Answer:
        if self.fail_next_payment:
            self.fail_next_payment = False
            return 503, {"retry-after": "1"}, {"status": 503, "message": "payments warming up"}
        key = seen.body["requestId"]
        if key not in self.payments:
            self.payments[key] = {"reference": f"pay-{len(self.payments) + 1}", "micros": seen.body["money"]["micros"]}
        return 200, {}, {"payment": self.payments[key]}


@pytest.fixture(scope="module")
def second(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, Payments]]:
    root = tmp_path_factory.mktemp("second")
    with serving() as service:
        payments = Payments(service)
        base = tomllib.loads(Path(stack.cli.env["FLOWCTL_CONFIG"]).read_text())
        base["task_queue"] = uid("tq-second-")
        base["services"] = {"bridge": "http", "http": {"base_url": f"http://127.0.0.1:{service.port}",
                                                        "api_mount": "/rpc", "version": 3, "routes": ROUTES}}  # fmt: skip
        config = root / "second.toml"
        config.write_text(tomli_w.dumps(base))
        cli = Cli({**stack.cli.env, "FLOWCTL_CONFIG": str(config)}, root)
        worker = cli.worker()
        try:
            yield cli, payments
        finally:
            stop_process(worker)


def test_an_order_runs_over_another_services_shape_wired_by_configuration_alone(second: tuple[Cli, Payments]) -> None:
    cli, payments = second
    order = order_input(uid("s2"), price=12.5, qty=2)
    wid = start(cli, "order", order)
    result = cli("result", wid, "--timeout", "60s", "-o", "json")
    assert result.code == 0, str(result)
    assert result.json()["result"]["charge_id"] == "pay-1" and result.json()["result"]["total_cents"] == 2500
    sent = [s for s in payments.service.seen if s.path == "/rpc/v3/payments"]
    assert len(sent) == 2 and sent[0].body == sent[1].body  # a 503, then the retry with the same key
    assert sent[1].body["money"] == {"micros": 25_000_000, "currency": "EUR"}
    assert sent[1].body["order"] == {"id": order["order_id"], "customer": order["customer_id"]}
    assert len(payments.payments) == 1  # charged once
    holds = [s for s in payments.service.seen if s.path == "/rpc/v3/stock/holds"]
    assert holds[0].body["skus"] == ["SKU-1"] and holds[0].body["counts"] == [2]
    check = cli("services", "check", "-o", "json")
    assert check.code == 0 and {r["url"].split("/rpc/v3/")[1] for r in check.json()["routes"]} >= {"payments"}
    assert json.dumps(check.json()).count("/rpc/v3/") == len(COMMANDS)
