"""`flowctl relay` against the suite's dev server and worker: events in each form PURISTA sends
them become signals (or updates), once per event id, and every event that can never succeed
is refused with a 4xx that says why, before anything is sent."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from conftest import FLOWCTL, Cli, Stack, free_port, order_input, start, stop_process, uid, wait_for_status

TOKEN = "relay-secret-7f3a"
EVENTS = {
    "emailAddressConfirmed": {"workflow": "onboarding-{userId}", "signal": "verify-email",
                              "payload": '{"verified_by": "email link (" & email & ")"}'},
    "fraudReviewDecided": {"workflow": "order-{orderId}", "signal": "review",
                           "payload": '{"decision": decision, "reviewer": reviewer, "comment": comment ? comment : ""}'},
    "approvalDecided": {"workflow": "approval-{requestId}", "update": "decide",
                        "payload": '{"approver": approver, "decision": decision}'},
    "userSignedUp": {"workflow": "onboarding-{userId}", "signal": "verify-email",
                     "payload": '{"verified_by": "signup"}',
                     "start_input": '{"user_id": userId, "email": email, "name": name}'},
}  # fmt: skip


@dataclass
class RelayStack:
    url: str
    cli: Cli
    proc: subprocess.Popen[bytes]
    log: Path


def relay_config(stack: Stack, root: Path, events: dict[str, Any], **relay: Any) -> Cli:
    config = root / "relay.toml"
    settings = {"relay": {"port": 0, "token_env": "RELAY_TOKEN", **relay, "events": events}}
    config.write_text(Path(stack.cli.env["FLOWCTL_CONFIG"]).read_text() + "\n" + tomli_w.dumps(settings))
    return Cli({**stack.cli.env, "FLOWCTL_CONFIG": str(config), "RELAY_TOKEN": TOKEN}, root)


def start_relay(cli: Cli) -> tuple[subprocess.Popen[bytes], str, Path]:
    log = cli.cwd / f"relay-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([FLOWCTL, "relay"], env=cli.env, cwd=cli.cwd, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text()
        if "relay ready" in text:
            port = text.split("http://127.0.0.1:", 1)[1].split("/", 1)[0]
            return proc, f"http://127.0.0.1:{port}", log
        assert proc.poll() is None, text
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"relay did not start: {log.read_text()}")


@pytest.fixture(scope="module")
def relay(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayStack]:
    root = tmp_path_factory.mktemp("relay")
    cli = relay_config(stack, root, EVENTS)
    proc, url, log = start_relay(cli)
    yield RelayStack(url, cli, proc, log)
    stop_process(proc)


def post(url: str, body: Any, headers: dict[str, str] | None = None, token: str | None = TOKEN) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    for key, value in {"content-type": "application/cloudevents+json", **(headers or {})}.items():
        request.add_header(key, value)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def cloud_event(kind: str, data: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """A CloudEvent as `@purista/core`'s toCloudEvent writes it."""
    return {"specversion": "1.0", "type": kind, "source": "purista://accounts", "id": event_id or uuid.uuid4().hex,
            "datacontenttype": "application/json", "data": data, "traceid": "t-1"}  # fmt: skip


def onboarding(flowctl: Cli) -> tuple[str, str]:
    user = uid("u")
    wid = start(flowctl, "onboarding", {"user_id": user, "email": f"{user}@example.com", "name": "R"})
    wait_for_status(flowctl, wid, "awaiting_verification")
    return user, wid


def signals_in_history(flowctl: Cli, wid: str, name: str) -> int:
    history = flowctl("history", wid, "-o", "json").json()
    return sum(
        1
        for e in history["events"]
        if e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED"
        and e["workflowExecutionSignaledEventAttributes"]["signalName"] == name
    )


def test_a_structured_cloud_event_signals_its_workflow_once_however_often_delivered(
    flowctl: Cli, relay: RelayStack
) -> None:
    user, wid = onboarding(flowctl)
    event = cloud_event("emailAddressConfirmed", {"userId": user, "email": f"{user}@example.com"})
    for _ in range(3):  # PURISTA delivers at least once
        code, body = post(relay.url, event)
        assert code == 200 and body["workflow_id"] == wid and body["signal"] == "verify-email", body
    result = flowctl("result", wid, "--timeout", "60s", "-o", "json")
    assert result.code == 0, str(result)
    assert result.json()["result"]["verified_by"] == f"email link ({user}@example.com)"
    assert signals_in_history(flowctl, wid, "verify-email") == 1


def test_a_binary_cloud_event_and_a_raw_purista_message_are_events_too(flowctl: Cli, relay: RelayStack) -> None:
    order = order_input(uid("fr"), price=5000)  # held for review
    wid = start(flowctl, "order", order)
    wait_for_status(flowctl, wid, "awaiting_review")
    headers = {"content-type": "application/json", "ce-specversion": "1.0", "ce-type": "fraudReviewDecided",
               "ce-id": uuid.uuid4().hex, "ce-source": "purista://fraud"}  # fmt: skip
    data = {"orderId": order["order_id"], "decision": "approve", "reviewer": "risk-team"}
    code, body = post(relay.url, data, headers)
    assert code == 200, body
    assert flowctl("result", wid, "--timeout", "60s", "-o", "json").json()["result"]["reviewed_by"] == "risk-team"

    user, wid2 = onboarding(flowctl)
    message = {"id": uuid.uuid4().hex, "messageType": "customEvent", "eventName": "emailAddressConfirmed",
               "timestamp": 1, "sender": {"serviceName": "accounts"}, "payload": {"userId": user, "email": "x@y.z"}}  # fmt: skip
    code, body = post(relay.url, message, {"content-type": "application/json"})
    assert code == 200, body
    assert flowctl("result", wid2, "--timeout", "60s").code == 0


def test_an_event_can_run_an_update_and_its_refusal_is_a_422(flowctl: Cli, relay: RelayStack) -> None:
    request = uid("ap")
    wid = start(flowctl, "approval", {"request_id": request, "requester": "alice", "title": "T", "amount": 5000,
                                      "approvers": ["bob"]})  # fmt: skip
    wait_for_status(flowctl, wid, "awaiting_decision")
    refused = post(relay.url, cloud_event("approvalDecided", {"requestId": request, "approver": "mallory",
                                                              "decision": "approve"}))  # fmt: skip
    assert refused[0] == 422 and "refused" in refused[1]["error"], refused
    event = cloud_event("approvalDecided", {"requestId": request, "approver": "bob", "decision": "approve"})
    assert post(relay.url, event)[0] == 200
    assert post(relay.url, event)[0] == 200  # the same event again: the same update, applied once
    result = flowctl("result", wid, "--timeout", "60s", "-o", "json")
    assert result.code == 0 and result.json()["status"] == "approved", str(result)


def test_an_event_may_start_its_workflow(flowctl: Cli, relay: RelayStack) -> None:
    user = uid("ss")
    event = cloud_event("userSignedUp", {"userId": user, "email": f"{user}@example.com", "name": "S"})
    code, body = post(relay.url, event)
    assert code == 200 and body.get("started") is True, body
    code, again = post(relay.url, event)  # redelivered: nothing started or signalled twice
    assert code == 200 and again.get("started") is None, again
    result = flowctl("result", f"onboarding-{user}", "--timeout", "60s", "-o", "json")
    assert result.code == 0 and result.json()["result"]["verified_by"] == "signup", str(result)
    assert signals_in_history(flowctl, f"onboarding-{user}", "verify-email") == 1


@pytest.mark.parametrize(
    ("body", "headers", "token", "status", "fragment"),
    [
        (b"not json", None, TOKEN, 400, "not JSON"),
        ({"hello": "world"}, None, TOKEN, 400, "neither a CloudEvent"),
        ({"specversion": "1.0", "type": "x"}, None, TOKEN, 400, "needs a type and an id"),
        (cloud_event("somethingElse", {}), None, TOKEN, 422, "no mapping for event 'somethingElse'"),
        (cloud_event("emailAddressConfirmed", {"email": "a@b.c"}), None, TOKEN, 422, "has no userId"),
        (cloud_event("fraudReviewDecided", {"orderId": "A-1", "decision": "maybe", "reviewer": "r"}), None, TOKEN,
         422, "decision"),
        (cloud_event("emailAddressConfirmed", {"userId": "nobody-here", "email": "a@b.c"}), None, TOKEN, 404,
         "'onboarding-nobody-here' does not exist"),
        (cloud_event("emailAddressConfirmed", {"userId": "u"}), None, "wrong", 401, "bearer token"),
        (cloud_event("emailAddressConfirmed", {"userId": "u"}), None, None, 401, "bearer token"),
    ],
)  # fmt: skip
def test_an_event_that_can_never_succeed_is_a_4xx_saying_why(
    relay: RelayStack, body: Any, headers: dict[str, str] | None, token: str | None, status: int, fragment: str
) -> None:
    code, answer = post(relay.url, body, headers, token)
    assert code == status and fragment in answer["error"], (code, answer)


def test_an_event_for_a_workflow_that_ended_is_a_409(flowctl: Cli, relay: RelayStack) -> None:
    user, wid = onboarding(flowctl)
    assert flowctl("signal", wid, "verify-email").code == 0
    assert flowctl("result", wid, "--timeout", "60s").code == 0
    code, answer = post(relay.url, cloud_event("emailAddressConfirmed", {"userId": user, "email": "a@b.c"}))
    assert code == 409 and "has already ended" in answer["error"], answer


def test_temporal_unreachable_is_503_so_the_sender_retries_and_exit_5_at_start(tmp_path: Path) -> None:
    from conftest import isolated_env, write_config

    port = free_port()
    own = Cli(isolated_env(tmp_path, write_config(tmp_path, port=port, task_queue="relay-down")), tmp_path)
    assert own("server", "start", timeout=120).code == 0
    stack = Stack(tmp_path, port, "relay-down", own)
    cli = relay_config(stack, tmp_path, EVENTS)
    proc, url, _log = start_relay(cli)
    try:
        assert own("server", "stop").code == 0
        code, answer = post(url, cloud_event("emailAddressConfirmed", {"userId": "u-1", "email": "a@b.c"}))
        assert code == 503 and "Temporal is unreachable" in answer["error"], (code, answer)
    finally:
        stop_process(proc)
    run = cli("relay", timeout=60)  # and with nothing to connect to, it does not start
    assert run.code == 5 and "cannot reach Temporal" in run.stderr, str(run)


@pytest.mark.parametrize(
    ("events", "relay_settings", "fragment"),
    [
        ({"e": {"workflow": "parcel-{id}", "signal": "x"}}, {}, "fits no kind's ids"),
        ({"e": {"workflow": "order-{orderId}", "signal": "nope"}}, {}, "has no signal 'nope'"),
        ({"e": {"workflow": "order-{orderId}", "signal": "review", "payload": "{{"}}, {}, "not a JSONata expression"),
        ({"e": {"workflow": "order-{orderId}"}}, {}, "give one of signal or update"),
        ({}, {"host": "0.0.0.0", "token_env": None}, "beyond loopback"),
        ({}, {"token_env": "RELAY_TOKEN_UNSET"}, "RELAY_TOKEN_UNSET, which is not set"),
    ],
)
def test_a_bad_relay_configuration_is_exit_2_naming_the_key(
    stack: Stack, tmp_path: Path, events: dict[str, Any], relay_settings: dict[str, Any], fragment: str
) -> None:
    settings = {k: v for k, v in relay_settings.items() if v is not None}
    cli = relay_config(stack, tmp_path, events, **settings)
    if relay_settings.get("token_env", "") is None:
        config = Path(cli.env["FLOWCTL_CONFIG"])
        config.write_text(config.read_text().replace('token_env = "RELAY_TOKEN"\n', ""))
    run = cli("relay", timeout=60)
    assert run.code == 2 and fragment in run.stderr and len(run.stderr.splitlines()) == 1, str(run)


def test_the_relay_stops_on_sigterm_and_says_so(stack: Stack, tmp_path: Path) -> None:
    cli = relay_config(stack, tmp_path, EVENTS)
    proc, _url, log = start_relay(cli)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert "flowctl relay stopped" in log.read_text()


# What the adversarial pass found; each failed before its fix.


def raw_post(url: str, head: bytes, body: bytes) -> int:
    """The status of a request written byte for byte (headers no HTTP client would send)."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\n" + head
                     + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)  # fmt: skip
        return int(sock.recv(200).split(b" ")[1])


def test_bytes_that_are_not_text_are_a_4xx_not_a_500(relay: RelayStack) -> None:
    event = json.dumps(cloud_event("emailAddressConfirmed", {"userId": "u", "email": "a@b.c"})).encode()
    assert raw_post(relay.url, b"Authorization: Bearer \xf6\xff\r\n", event) == 401
    code, answer = post(
        relay.url, b'{"specversion": "1.0", "type": "emailAddressConfirmed", "id": "\\ud800", "data": {}}'
    )
    assert code == 400 and "not UTF-8" in answer["error"], answer
    code, answer = post(relay.url, cloud_event("fraudReviewDecided", {"orderId": True, "decision": "approve",
                                                                     "reviewer": "r"}))  # fmt: skip
    assert code == 422 and "not text or a whole number" in answer["error"], answer


def test_the_bearer_scheme_is_case_insensitive_and_required(relay: RelayStack) -> None:
    event = cloud_event("emailAddressConfirmed", {"userId": "nobody-here", "email": "a@b.c"})
    assert post(relay.url, event, {"authorization": f"bearer {TOKEN}"}, token=None)[0] == 404  # past the token
    assert post(relay.url, event, {"authorization": TOKEN}, token=None)[0] == 401  # a bare token is not a scheme


def test_a_template_with_a_conversion_or_format_is_refused(stack: Stack, tmp_path: Path) -> None:
    for template in ("order-{orderId!r}", "order-{orderId:>900}"):
        cli = relay_config(stack, tmp_path, {"e": {"workflow": template, "signal": "review"}})
        run = cli("relay", timeout=60)
        assert run.code == 2 and "each {...} names one field" in run.stderr, str(run)


def test_a_request_that_is_not_http_is_a_400_and_leaves_the_log_alone(relay: RelayStack) -> None:
    """A port scan or garbage is the client's fault: answered 400, with no traceback in the
    relay's log for each (which would let anyone flood it), and the relay goes on serving."""
    import socket

    host, port = relay.url.removeprefix("http://").split(":")
    for request in (b"\x16\x03\x01\x00garbage\r\n\r\n", b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"):
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(request)
            assert sock.recv(200).startswith(b"HTTP/1.0 400"), request[:20]
    event = cloud_event("emailAddressConfirmed", {"userId": "nobody-here", "email": "a@b.c"})
    assert post(relay.url, event)[0] == 404  # still serving: no such workflow
    log = relay.log.read_text()
    assert "Traceback" not in log and "Error handling request" not in log, log[-2000:]
