"""The `http` bridge as a client: a real HTTP server on loopback answers each way a PURISTA
service can (both of its error styles), and the bridge reads each answer as the contract says:
done, a business refusal (not retried), worth retrying (after `Retry-After`), or outside the
contract. Routes that cannot work are refused when they are compiled, naming the setting."""

from __future__ import annotations

import asyncio
import json
import time
import tomllib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, free_port, isolated_env, write_config
from loopback import Answer, Seen, Service, Trickle, serving
from temporalio.testing import ActivityEnvironment

from flowctl.config import HttpServices
from flowctl_workflows.services import BusinessError, ContractError, TransientError
from flowctl_workflows.services import http as bridge_http
from flowctl_workflows.services.commands import COMMANDS


@pytest.fixture
def service() -> Iterator[Service]:
    with serving() as state:
        yield state


CHARGE = {"idempotency_key": "order-A-1/charge_payment", "order_id": "A-1", "customer_id": "c-1",
          "amount_cents": 1250, "card": "tok_visa"}  # fmt: skip
ROUTES = {
    "payment.charge": {
        "path": "charges",
        "request": '{"orderId": order_id, "customerId": customer_id, "amount": amount_cents / 100, '
        '"cardToken": card, "idempotencyKey": idempotency_key}',
        "answer": '{"charge_id": chargeId, "amount_cents": $round(amount * 100)}',
    },
    "payment.refund": {
        "path": "charges/:chargeKey/refund",
        "params": '{"chargeKey": charge_key}',
        "request": '{"idempotencyKey": idempotency_key}',
    },  # fmt: skip
}


def bridge(service: Service, routes: dict[str, Any] | None = None, **http: Any) -> bridge_http.HttpBridge:
    everything = {name: {"path": name.replace(".", "/")} for name in COMMANDS} | (routes or ROUTES)
    settings = HttpServices.model_validate(
        {"base_url": f"http://127.0.0.1:{service.port}", "routes": everything, **http}
    )
    return bridge_http.HttpBridge(bridge_http.compile_routes(settings, COMMANDS, 10.0))


def call(b: bridge_http.HttpBridge, command: str, payload: dict[str, Any], workflow_id: str = "order-A-1") -> Any:
    """The call as an activity of `workflow_id` makes it (its trace id comes from the workflow)."""
    env = ActivityEnvironment()
    env.info = env.info.__class__(**{**vars(env.info), "workflow_id": workflow_id})

    async def run() -> Any:
        try:
            return await b.call(command, payload)
        finally:
            await b.close()

    return asyncio.run(env.run(run))


def test_a_call_maps_names_and_units_both_ways_and_carries_key_and_trace(service: Service) -> None:
    service.answers["/api/v1/charges"] = lambda s: (200, {}, {"chargeId": "ch-1", "amount": s.body["amount"]})
    answer = call(bridge(service), "payment.charge", CHARGE)
    assert answer == {"charge_id": "ch-1", "amount_cents": 1250}
    sent = service.seen[0]
    assert sent.method == "POST" and sent.headers["content-type"] == "application/json"
    assert sent.body == {"orderId": "A-1", "customerId": "c-1", "amount": 12.5, "cardToken": "tok_visa",
                         "idempotencyKey": "order-A-1/charge_payment"}  # fmt: skip
    trace = sent.headers["x-trace-id"]
    assert len(trace) == 32 and sent.headers["traceparent"].startswith(f"00-{trace}-")
    call(bridge(service), "payment.charge", CHARGE)  # the same workflow: the same trace id, a new span
    assert service.seen[1].headers["x-trace-id"] == trace
    assert service.seen[1].headers["traceparent"] != sent.headers["traceparent"]
    call(bridge(service), "payment.charge", CHARGE, workflow_id="order-B-2")
    assert service.seen[2].headers["x-trace-id"] != trace


def test_path_parameters_are_filled_and_quoted(service: Service) -> None:
    service.answers["/api/v1/charges/order-A-1%2Fcharge_payment/refund"] = lambda s: (204, {}, None)
    answer = call(bridge(service), "payment.refund", {"idempotency_key": "k", "charge_key": "order-A-1/charge_payment"})
    assert answer == {} and service.seen[0].body == {"idempotencyKey": "k"}


def problem(status: int, detail: str, **more: Any) -> Callable[[Seen], Answer]:
    body = {"type": "about:blank", "title": "Refused", "status": status, "detail": detail, "traceId": "t-1", **more}
    return lambda s: (status, {"content-type": "application/problem+json"}, body)


def v2(status: int, message: str, code: str) -> Callable[[Seen], Answer]:
    return lambda s: (status, {}, {"status": status, "message": message, "data": {"code": code}, "traceId": "t-2"})


@pytest.mark.parametrize(
    ("answer", "code", "message"),
    [
        (problem(402, "payment declined by the card issuer"), "about:blank", "payment declined by the card issuer"),
        (v2(402, "payment declined by the card issuer", "card_declined"), "card_declined", "payment declined"),
        (problem(409, "order A-1 already has a kept charge"), "about:blank", "already has a kept charge"),
        (v2(422, "unknown SKU 'X'", "unknown_sku"), "unknown_sku", "unknown SKU 'X'"),
        (lambda s: (404, {}, {"status": 404, "message": "Not Found"}), "404", "Not Found"),
    ],
)
def test_a_refusal_in_either_error_style_is_a_business_error_with_the_services_words(
    service: Service, answer: Callable[[Seen], Answer], code: str, message: str
) -> None:
    service.answers["/api/v1/charges"] = answer
    with pytest.raises(BusinessError) as refused:
        call(bridge(service), "payment.charge", CHARGE)
    assert refused.value.code == code and message in refused.value.message, refused.value.message
    assert refused.value.message.startswith("payment.charge: ")
    assert refused.value.details["status"] in (402, 404, 409, 422)


def test_a_validation_failure_keeps_the_services_issues(service: Service) -> None:
    issues = [{"code": "invalid_type", "path": ["amount"], "message": "Expected number, received string"}]
    service.answers["/api/v1/charges"] = problem(400, "validation failed", errors=issues)
    with pytest.raises(BusinessError) as refused:
        call(bridge(service), "payment.charge", CHARGE)
    assert refused.value.details["details"]["errors"] == issues
    assert refused.value.details["trace_id"] == "t-1"


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503])
def test_timeouts_overload_and_server_errors_are_worth_retrying(service: Service, status: int) -> None:
    service.answers["/api/v1/charges"] = lambda s: (status, {"retry-after": "2"}, {"message": "busy"})
    with pytest.raises(TransientError) as transient:
        call(bridge(service), "payment.charge", CHARGE)
    assert f"answered {status}" in str(transient.value) and transient.value.retry_after == 2.0


def test_retry_after_as_an_http_date(service: Service) -> None:
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    service.answers["/api/v1/charges"] = lambda s: (429, {"retry-after": when}, {"message": "slow down"})
    with pytest.raises(TransientError) as transient:
        call(bridge(service), "payment.charge", CHARGE)
    assert transient.value.retry_after is not None and 25 <= transient.value.retry_after <= 31


def test_an_asynchronous_job_handle_is_refused_naming_the_route(service: Service) -> None:
    service.answers["/api/v1/charges"] = lambda s: (202, {}, {"jobId": "j-1"})
    with pytest.raises(ContractError) as refused:
        call(bridge(service), "payment.charge", CHARGE)
    assert "202 Accepted" in str(refused.value) and 'services.http.routes."payment.charge"' in str(refused.value)


def test_a_service_that_hangs_past_its_timeout_is_worth_retrying(service: Service) -> None:
    def slow(seen: Seen) -> Answer:
        time.sleep(2)
        return 200, {}, {"chargeId": "late", "amount": 12.5}

    service.answers["/api/v1/charges"] = slow
    routes = {**ROUTES, "payment.charge": {**ROUTES["payment.charge"], "timeout": "300ms"}}
    started = time.monotonic()
    with pytest.raises(TransientError) as transient:
        call(bridge(service, routes), "payment.charge", CHARGE)
    assert "no answer within 0.3s" in str(transient.value) and time.monotonic() - started < 1.5


def test_a_service_that_is_down_is_worth_retrying(service: Service) -> None:
    settings = HttpServices.model_validate({"base_url": "http://127.0.0.1:9", "routes": {
        name: {"path": "x", "request": '{"idempotencyKey": idempotency_key}'} for name in COMMANDS}})  # fmt: skip
    down = bridge_http.HttpBridge(bridge_http.compile_routes(settings, COMMANDS, 10.0))
    with pytest.raises(TransientError) as transient:
        call(down, "payment.charge", CHARGE)
    assert "POST http://127.0.0.1:9/api/v1/x failed" in str(transient.value)


def test_an_answer_that_is_not_json_or_not_an_object_is_outside_the_contract(service: Service) -> None:
    service.answers["/api/v1/charges"] = lambda s: (200, {"content-type": "text/html"}, "<html>hi</html>")
    with pytest.raises(ContractError, match="not JSON"):
        call(bridge(service), "payment.charge", CHARGE)
    service.answers["/api/v1/charges"] = lambda s: (200, {}, ["a", "list"])
    with pytest.raises(ContractError, match="not a JSON object"):
        call(bridge(service, {"payment.charge": {"path": "charges"}}), "payment.charge", CHARGE)


def test_a_bearer_token_is_sent_and_never_in_the_route(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICES_TOKEN", "s3cret-token")
    token = bridge_http.token_from("SERVICES_TOKEN", None)
    service.answers["/api/v1/charges"] = lambda s: (200, {}, {"chargeId": "ch-1", "amount": 12.5})
    b = bridge(service)
    b._token = token
    call(b, "payment.charge", CHARGE)
    assert service.seen[0].headers["authorization"] == "Bearer s3cret-token"
    assert "s3cret" not in repr(b.routes)


@pytest.mark.parametrize(
    ("routes", "fragment"),
    [
        ({"payment.charge": {"path": "charges"}}, "has no route for"),
        ({**{n: {"path": "x"} for n in COMMANDS}, "payment.chrage": {"path": "x"}}, "'payment.chrage': no such service"),
        ({**{n: {"path": "x"} for n in COMMANDS}, "payment.charge": {"path": "x", "request": '{"a": '}},
         'services.http.routes."payment.charge".request: not a JSONata expression'),
        ({**{n: {"path": "x"} for n in COMMANDS}, "payment.charge": {"path": "x", "timeout": "10s"}},
         "below the activity's start-to-close timeout"),
        ({**{n: {"path": "x"} for n in COMMANDS}, "payment.charge": {"path": "x", "request": '{"orderId": order_id}'}},
         'services.http.routes."payment.charge".request drops idempotency_key'),
    ],
)  # fmt: skip
def test_a_route_that_cannot_work_is_refused_naming_its_setting(routes: dict[str, Any], fragment: str) -> None:
    settings = HttpServices.model_validate({"routes": routes})
    with pytest.raises(bridge_http.RouteError) as refused:
        bridge_http.compile_routes(settings, COMMANDS, 10.0)
    assert fragment in str(refused.value), str(refused.value)


async def run_activity(activity: Callable[..., Any], *args: Any) -> Any:
    return await ActivityEnvironment().run(activity, *args)


def test_the_activity_honours_retry_after_and_refusals_are_not_retried(service: Service) -> None:
    # Through the activity, as the worker registers it: Retry-After becomes the next retry's delay.
    from temporalio.exceptions import ApplicationError

    from flowctl_workflows import activities
    from flowctl_workflows.services.commands import ChargePayment

    service.answers["/api/v1/charges"] = lambda s: (429, {"retry-after": "3"}, {"message": "slow down"})
    charge = next(a for a in activities.build(bridge(service), review_timeout=timedelta(hours=1))
                  if getattr(a, "__name__", "") == "payment_charge")  # fmt: skip
    request = ChargePayment.model_validate(CHARGE)
    with pytest.raises(ApplicationError) as failed:
        asyncio.run(run_activity(charge, request))
    assert failed.value.next_retry_delay == timedelta(seconds=3) and not failed.value.non_retryable
    service.answers["/api/v1/charges"] = v2(402, "payment declined by the card issuer", "card_declined")
    with pytest.raises(ApplicationError) as refused:
        asyncio.run(run_activity(charge, request))
    assert refused.value.non_retryable and refused.value.details[0]["code"] == "card_declined"


def http_config(tmp_path: Path, service: Service, routes: dict[str, Any] | None = None) -> Cli:
    """A CLI whose config wires every command to `service` (none running Temporal)."""
    import tomli_w

    everything = {name: {"path": name.replace(".", "/"), "request": '$merge([$, {"idempotencyKey": idempotency_key}])'}
                  for name in COMMANDS} | (routes or {})  # fmt: skip
    config = write_config(tmp_path, port=free_port(), task_queue="http-check")
    extra = {
        "services": {"bridge": "http", "http": {"base_url": f"http://127.0.0.1:{service.port}", "routes": everything}}
    }
    config.write_text(config.read_text() + "\n" + tomli_w.dumps(extra))
    return Cli(isolated_env(tmp_path, config), tmp_path)


def serve_openapi(service: Service, *, leave_out: str | None = None) -> None:
    paths = {
        f"/api/v1/{name.replace('.', '/')}": {"post": {"operationId": name}} for name in COMMANDS if name != leave_out
    }
    service.answers["/healthz"] = lambda s: (200, {}, {"status": "ok"})
    service.answers["/api/openapi.json"] = lambda s: (200, {}, {"openapi": "3.0.3", "paths": paths})


def test_services_check_lists_the_route_table_and_passes_when_every_route_is_served(
    tmp_path: Path, service: Service
) -> None:
    serve_openapi(service)
    run = http_config(tmp_path, service)("services", "check", "-o", "json")
    assert run.code == 0, str(run)
    rows = run.json()["routes"]
    assert {row["command"] for row in rows} == set(COMMANDS) and all(row["state"] == "ok" for row in rows)
    assert rows[0]["url"].startswith(f"http://127.0.0.1:{service.port}/api/v1/")


def test_a_route_the_service_does_not_serve_is_exit_2_at_check_and_at_worker_start(
    tmp_path: Path, service: Service
) -> None:
    serve_openapi(service, leave_out="shipping.cancel")
    cli = http_config(tmp_path, service)
    run = cli("services", "check")
    assert run.code == 2 and "not among the service's commands" in run.stdout, str(run)
    worker = cli("worker", timeout=60)
    assert worker.code == 2 and len(worker.stderr.splitlines()) == 1, str(worker)
    assert "shipping.cancel: POST" in worker.stderr and 'services.http.routes."shipping.cancel".path' in worker.stderr


def test_a_service_that_does_not_answer_is_exit_5_at_check_and_at_worker_start(
    tmp_path: Path, service: Service
) -> None:
    cli = http_config(tmp_path, service)
    service.answers["/healthz"] = lambda s: (503, {}, {"status": "starting"})
    run = cli("services", "check", "-o", "json")
    assert run.code == 5 and "service down" in run.json()["routes"][0]["state"], str(run)
    worker = cli("worker", timeout=60)
    assert worker.code == 5 and "/healthz answered 503" in worker.stderr, str(worker)


@pytest.mark.parametrize(
    ("routes", "fragment"),
    [
        ({"payment.charge": {"path": "x", "answer": "{{"}}, 'routes."payment.charge".answer: not a JSONata'),
        ({"notify.sendd": {"path": "x"}}, "'notify.sendd': no such service command"),
    ],
)
def test_a_bad_route_table_is_exit_2_naming_the_key_before_anything_is_contacted(
    tmp_path: Path, service: Service, routes: dict[str, Any], fragment: str
) -> None:
    cli = http_config(tmp_path, service, routes)
    for args in (["services", "check"], ["worker"]):
        run = cli(*args, timeout=60)
        assert run.code == 2 and fragment in run.stderr and len(run.stderr.splitlines()) == 1, str(run)
    assert service.seen == []  # refused before any call


def test_services_check_with_the_local_bridge_names_its_ledger(local_cli: Cli) -> None:
    run = local_cli("services", "check", "-o", "json")
    assert run.code == 0 and run.json()["bridge"] == "local" and run.json()["ledger"].endswith("ledger.db"), str(run)


def test_a_command_that_only_reads_may_leave_the_key_out_when_it_says_so() -> None:
    routes: dict[str, dict[str, Any]] = {
        n: {"path": "x", "request": '$merge([$, {"idempotencyKey": idempotency_key}])'} for n in COMMANDS
    }
    routes["fraud.screen"] = {"path": "screenings", "request": '{"total": total_cents / 100}', "changes_nothing": True}
    compiled = bridge_http.compile_routes(HttpServices.model_validate({"routes": routes}), COMMANDS, 10.0)
    assert compiled["fraud.screen"].payload({"total_cents": 150000}) == {"total": 1500}


# What the adversarial pass found; each failed before its fix.


def test_a_non_object_answer_is_refused_even_with_an_answer_mapping(service: Service) -> None:
    # A mapping of `null` or a list gave {}: a compensation was marked done with nothing undone.
    routes = {**ROUTES, "inventory.release": {"path": "release", "request": '{"k": idempotency_key}',
                                              "answer": '{"released_lines": releasedLines}'}}  # fmt: skip
    for body in (["x"], None, "text"):
        service.answers["/api/v1/release"] = lambda s, b=body: (200, {}, json.dumps(b))  # type: ignore[misc]
        with pytest.raises(ContractError, match="not a JSON object|not JSON"):
            call(bridge(service, routes), "inventory.release", {"idempotency_key": "k", "reservation_key": "r"})


def test_a_huge_refusal_is_kept_short_enough_for_the_history(service: Service) -> None:
    service.answers["/api/v1/charges"] = lambda s: (422, {}, {"message": "x" * 5_000_000, "errors": ["y" * 100_000]})
    with pytest.raises(BusinessError) as refused:
        call(bridge(service), "payment.charge", CHARGE)
    assert len(refused.value.message) < 2100 and len(json.dumps(refused.value.details)) < 40_000


def test_an_answer_too_large_is_refused_and_a_trickling_one_times_out(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bridge_http, "MAX_ANSWER", 10_000)
    service.answers["/api/v1/charges"] = lambda s: (200, {}, {"chargeId": "c" * 50_000, "amount": 1})
    with pytest.raises(ContractError, match="answered more than"):
        call(bridge(service), "payment.charge", CHARGE)
    service.answers["/api/v1/charges"] = lambda s: (200, {}, Trickle(b'{"chargeId": "ch-1", "amount": 12.5}', 0.1))
    routes = {**ROUTES, "payment.charge": {**ROUTES["payment.charge"], "timeout": "1s"}}
    with pytest.raises(TransientError, match="no answer within 1s"):
        call(bridge(service, routes), "payment.charge", CHARGE)


def test_deep_json_is_not_json_to_read_not_a_crash(service: Service) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    service.answers["/api/v1/charges"] = lambda s: (200, {}, deep)
    with pytest.raises(ContractError, match="not JSON"):
        call(bridge(service), "payment.charge", CHARGE)
    service.answers["/api/v1/charges"] = lambda s: (422, {}, deep)
    with pytest.raises(BusinessError):
        call(bridge(service), "payment.charge", CHARGE)


@pytest.mark.parametrize(("value", "seconds"), [("1e20", 3600.0), ("inf", 3600.0), ("nan", None),
                                                ("Wed, 21 Oct 2015 07:28:00", 0.0)])  # fmt: skip
def test_odd_retry_after_values_are_read_within_bounds(service: Service, value: str, seconds: float | None) -> None:
    service.answers["/api/v1/charges"] = lambda s: (503, {"retry-after": value}, {"message": "busy"})
    with pytest.raises(TransientError) as transient:
        call(bridge(service), "payment.charge", CHARGE)
    assert transient.value.retry_after == seconds


def test_a_latin1_answer_is_read_in_its_charset(service: Service) -> None:
    body = '{"chargeId": "ch-é", "amount": 12.5}'.encode("latin-1")
    service.answers["/api/v1/charges"] = lambda s: (200, {"content-type": "application/json; charset=iso-8859-1"}, body)
    assert call(bridge(service), "payment.charge", CHARGE)["charge_id"] == "ch-é"


@pytest.mark.parametrize("key", ["..", ".", {"a": 1}, True])
def test_a_path_parameter_that_is_no_path_segment_is_refused(service: Service, key: Any) -> None:
    with pytest.raises(ContractError, match="no path segment"):
        call(bridge(service), "payment.refund", {"idempotency_key": "k", "charge_key": key})
    assert service.seen == []


def test_an_empty_api_mount_makes_no_double_slash(service: Service) -> None:
    service.answers["/v1/charges"] = lambda s: (200, {}, {"chargeId": "ch-1", "amount": 12.5})
    assert call(bridge(service, api_mount=""), "payment.charge", CHARGE)["charge_id"] == "ch-1"


@pytest.mark.parametrize(
    ("route", "fragment"),
    [
        ({"path": "x", "request": '{"f": function($x){$x}, "idempotencyKey": idempotency_key}'}, "JSON cannot carry"),
        ({"path": "x", "timeout": "0s", "request": '{"idempotencyKey": idempotency_key}'}, "must be above 0"),
        ({"path": "x", "request": '{"to": to, "meta": ref ? {"ref": ref, "idempotencyKey": idempotency_key}}'},
         "drops idempotency_key"),  # it keeps the key only when the optional ref is given
    ],
)  # fmt: skip
def test_more_routes_that_cannot_work_are_refused(route: dict[str, Any], fragment: str) -> None:
    routes = {n: {"path": "x", "request": '$merge([$, {"idempotencyKey": idempotency_key}])'} for n in COMMANDS}
    routes["email.send"] = route
    with pytest.raises(bridge_http.RouteError, match=fragment):
        bridge_http.compile_routes(HttpServices.model_validate({"routes": routes}), COMMANDS, 10.0)


def test_a_password_in_a_url_or_a_secret_for_a_variable_name_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="must not carry a user or password"):
        HttpServices.model_validate({"base_url": "http://admin:hunter2@127.0.0.1:8090"})
    with pytest.raises(ValidationError, match="must name an environment variable"):
        HttpServices.model_validate({"token_env": "sk_live-abc/123"})


@pytest.mark.parametrize(("content", "fragment"), [(b"\xff\xfe", "not UTF-8 text"), ("tökén".encode(), "non-ASCII"),
                                                   (b"a\x01b", "control")])  # fmt: skip
def test_a_token_that_is_no_bearer_token_is_refused(tmp_path: Path, content: bytes, fragment: str) -> None:
    file = tmp_path / "token"
    file.write_bytes(content)
    with pytest.raises(bridge_http.RouteError, match=fragment):
        bridge_http.token_from(None, file)
    with pytest.raises(bridge_http.RouteError, match="both set"):
        bridge_http.token_from("TOKEN", file)


# What the second adversarial pass found; each failed before its fix.


def test_a_refusal_is_one_log_line_without_the_token_and_names_the_trace_sent(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    from temporalio.exceptions import ApplicationError

    from flowctl_workflows import activities
    from flowctl_workflows.services.commands import ChargePayment

    said = "card rejected\n2026-12-02 WARNING forged line\r\x1b[31m Bearer s3cret-token"
    service.answers["/api/v1/charges"] = lambda s: (400, {}, {"status": 400, "message": said})
    b = bridge(service)
    b._token = "s3cret-token"
    charge = next(a for a in activities.build(b, review_timeout=timedelta(hours=1))
                  if getattr(a, "__name__", "") == "payment_charge")  # fmt: skip
    with caplog.at_level("WARNING"), pytest.raises(ApplicationError) as refused:
        asyncio.run(run_activity(charge, ChargePayment.model_validate(CHARGE)))
    assert "s3cret" not in str(refused.value) and "s3cret" not in json.dumps(refused.value.details, default=str)
    lines = [r.getMessage() for r in caplog.records if r.name == "flowctl.services"]
    assert len(lines) == 1 and "\n" not in lines[0] and "\r" not in lines[0] and "\x1b" not in lines[0], lines
    assert "s3cret" not in lines[0] and "trace " in lines[0], lines  # the trace id sent, as the service gave none


def test_a_starting_table_never_waives_the_key_and_is_valid_toml_for_odd_names(
    tmp_path: Path, service: Service
) -> None:
    odd = {"type": "object", "properties": {"order\nId": {}, 'order"Id': {}, "x */ y": {}, "orderId": {}}}
    spec = {"openapi": "3.0.3", "paths": {
        "/api/v1/charges": {"post": {"operationId": "chargeCard"}},  # no request body schema
        "/api/v1/refunds": {"post": {"operationId": "refund\nCharge", "requestBody": {"content": {
            "application/json": {"schema": odd}}}, "responses": {"200": "x"}}},
        "/api/v" + "9" * 5000 + "/x": {"post": {"operationId": "huge"}},
    }}  # fmt: skip
    service.answers["/api/openapi.json"] = lambda s: (200, {}, spec)
    cli = http_config(tmp_path, service)
    run = cli("services", "routes", "--from", f"http://127.0.0.1:{service.port}")
    assert run.code == 0, str(run)
    table = tomllib.loads(run.stdout)
    routes = table["services"]["http"]["routes"]
    assert all("changes_nothing" not in route for route in routes.values()), routes
    assert routes["payment.refund"]["request"] == '{"orderId": null /* flowctl has: charge_key, idempotency_key */}'


@pytest.mark.parametrize(
    "spec",
    [
        {"openapi": "3", "paths": {"/api/v1/x": {"post": {"requestBody": "x", "responses": [1]}}}},
        json.loads("[" * 50 + "1" + "]" * 50),
    ],
)
def test_an_openapi_document_flowctl_cannot_read_is_exit_2(tmp_path: Path, service: Service, spec: Any) -> None:
    service.answers["/api/openapi.json"] = lambda s: (200, {}, spec)
    run = http_config(tmp_path, service)("services", "routes", "--from", f"http://127.0.0.1:{service.port}")
    assert run.code in (0, 2) and "internal error" not in run.stderr, str(run)


def test_routes_from_a_url_with_a_password_does_not_print_it(local_cli: Cli) -> None:
    run = local_cli("services", "routes", "--from", "http://admin:S3cretPW@127.0.0.1:1/x")
    assert run.code == 2 and "S3cretPW" not in run.stderr and "must not carry a user or password" in run.stderr
    run = local_cli("services", "routes", "--from", "http://127.0.0.1:99999")
    assert run.code == 2 and "out of range" in run.stderr, str(run)


@pytest.mark.parametrize("value", ["http://", "http:// x", "http://[::1", "http://127.0.0.1:99999/v1/traces",
                                   "http://a\nb", "http://u:pw@h:4318/v1/traces"])  # fmt: skip
def test_a_bad_otlp_endpoint_is_refused(value: str) -> None:
    from pydantic import ValidationError

    from flowctl.config import Tracing

    with pytest.raises(ValidationError):
        Tracing.model_validate({"otlp_endpoint": value})
