"""Encrypted payloads: the server stores ciphertext only; keys rotate; the codec server serves the UI.

A worker and CLI on their own task queue of the session's server share AES-GCM keys from
`FLOWCTL_CODEC__KEYS`. The raw history is read back with a plain SDK client that has no
codec, so anything readable there was stored in plaintext.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMIUM, rendered
from conftest import (
    FLOWCTL,
    Cli,
    Stack,
    free_port,
    isolated_env,
    order_input,
    start,
    stop_process,
    uid,
    wait_for_status,
    write_config,
)

K1 = "k1:" + base64.b64encode(bytes(range(32))).decode()
K2 = "k2:" + base64.b64encode(bytes(range(32, 64))).decode()
SECRET_EMAIL_DOMAIN = "codec-secret.example"


@pytest.fixture(scope="module")
def queue(stack: Stack) -> Iterator[str]:
    """A task queue whose worker seals with k2 and still opens k1 (a rotation in progress)."""
    task_queue = uid("tq-codec-")
    worker = stack.cli.worker(env={"FLOWCTL_TASK_QUEUE": task_queue, "FLOWCTL_CODEC__KEYS": f"{K2},{K1}"})
    yield task_queue
    assert stop_process(worker) == 0


def cli_with(stack: Stack, queue: str, keys: str | None) -> Cli:
    env = {**stack.cli.env, "FLOWCTL_TASK_QUEUE": queue}
    if keys is not None:
        env["FLOWCTL_CODEC__KEYS"] = keys
    return Cli(env, stack.cli.cwd)


def raw_history(stack: Stack, workflow_id: str) -> Any:
    """The history exactly as the server stores it, fetched by a client with no codec."""
    from temporalio.client import Client

    async def fetch() -> Any:
        client = await Client.connect(stack.address)
        return await client.get_workflow_handle(workflow_id).fetch_history()

    return asyncio.run(fetch())


def payloads_of(history: Any) -> dict[str, Any]:
    """Every Payload in the history by its path, except search attributes (the server indexes those)
    and patch markers, which the SDK's core writes itself: they hold the patch's name only."""
    from temporalio.api.common.v1 import Payload

    found: dict[str, Any] = {}

    def walk(message: Any, path: str) -> None:
        if isinstance(message, Payload):
            found[path] = message
            return
        for descriptor, value in message.ListFields():
            if descriptor.message_type is None or descriptor.name in (
                "search_attributes",
                "marker_recorded_event_attributes",
            ):
                continue
            if descriptor.is_repeated:
                items = value.items() if hasattr(value, "items") else enumerate(value)
                for key, item in items:
                    if hasattr(item, "ListFields"):
                        walk(item, f"{path}.{descriptor.name}[{key}]")
            else:
                walk(value, f"{path}.{descriptor.name}")

    for event in history.events:
        walk(event, str(event.event_id))
    return found


def onboard(cli: Cli, reader: Cli | None = None) -> tuple[str, str]:
    """Start an onboarding with `cli`; follow and verify it with `reader` (default the same)."""
    user_id = uid("u")
    email = f"{user_id}@{SECRET_EMAIL_DOMAIN}"
    wid = start(cli, "onboarding", {"user_id": user_id, "email": email, "name": "Ada Secretname"})
    reader = reader or cli
    wait_for_status(reader, wid, "awaiting_verification")
    sent = reader("signal", wid, "verify-email")
    assert sent.code == 0, str(sent)
    return wid, email


def test_the_server_stores_no_plaintext_and_flowctl_reads_it_back(stack: Stack, queue: str) -> None:
    cli = cli_with(stack, queue, f"{K2},{K1}")
    wid, email = onboard(cli)
    result = cli("result", wid, "--timeout", "30s", "-o", "json")
    assert result.code == 0, str(result)
    assert result.json()["result"]["verified_by"] == "user"

    history = raw_history(stack, wid)
    stored = history.to_json()
    for secret in (email, SECRET_EMAIL_DOMAIN, "Ada Secretname", "verified_by", '"admin"'):
        assert secret not in stored
    payloads = payloads_of(history)
    assert len(payloads) >= 10  # input, every activity's input and result, the result
    plain = {
        path: p.metadata["encoding"] for path, p in payloads.items() if p.metadata["encoding"] != b"binary/encrypted"
    }
    assert plain == {}
    assert {p.metadata["encryption-key-id"] for p in payloads.values()} == {b"k2"}
    markers = [
        e.marker_recorded_event_attributes for e in history.events if e.HasField("marker_recorded_event_attributes")
    ]
    assert [m.marker_name for m in markers] == ["core_patch", "core_patch"], markers
    patches = [m.details["patch-data"].payloads[0].data for m in markers]
    assert b"saga-settled-steps" in patches[0] and b"flow-waits-in-memo" in patches[1], patches

    # flowctl's own text history opens them; the JSON history stays as the server stores it.
    text = cli("history", wid)
    assert email in text.stdout and "<encrypted" not in text.stdout
    assert email not in cli("history", wid, "-o", "json").stdout


def test_bulk_start_seals_every_input_and_the_worker_opens_them(stack: Stack, queue: str, tmp_path: Path) -> None:
    """Bulk start sends its own start requests (no SDK Client); they go through the same codec."""
    cli = cli_with(stack, queue, f"{K2},{K1}")
    customer = f"cust-{SECRET_EMAIL_DOMAIN}"
    orders = [{**order_input(uid()), "customer_id": customer} for _ in range(3)]
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(json.dumps(order) + "\n" for order in orders))
    run = cli("start", "order", "--from", str(path))
    assert run.code == 0, str(run)
    for line in map(json.loads, run.stdout.splitlines()):
        history = raw_history(stack, line["workflow_id"])
        assert customer not in history.to_json()
        started = history.events[0].workflow_execution_started_event_attributes
        assert [p.metadata["encryption-key-id"] for p in started.input.payloads] == [b"k2"]
        result = cli("result", line["workflow_id"], "--timeout", "60s", "-o", "json")
        assert result.code == 0 and result.json()["result"]["succeeded"] is True, str(result)


def test_keys_rotate_old_payloads_stay_readable(stack: Stack, queue: str) -> None:
    old = cli_with(stack, queue, K1)  # a client still sealing with k1
    new = cli_with(stack, queue, f"{K2},{K1}")
    wid, email = onboard(old, new)
    assert new("result", wid, "--timeout", "30s").code == 0
    ids = {p.metadata["encryption-key-id"] for p in payloads_of(raw_history(stack, wid)).values()}
    assert ids == {b"k1", b"k2"}  # the input sealed by the old client, the rest by the worker
    # Both keys open the history, in either order.
    assert email in cli_with(stack, queue, f"{K1},{K2}")("history", wid).stdout
    # Without the key that sealed the result: exit 5 (the server was reached), naming the key id.
    run = cli_with(stack, queue, K1)("result", wid, "--timeout", "10s")
    assert run.code == 5, str(run)
    assert "'k2'" in run.stderr and "FLOWCTL_CODEC__KEYS" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_without_keys_a_sealed_result_is_exit_5_not_a_crash(stack: Stack, queue: str) -> None:
    wid, _ = onboard(cli_with(stack, queue, K2))
    plain = cli_with(stack, queue, None)
    for args in (("result", wid, "--timeout", "30s"), ("query", wid, "status")):
        run = plain(*args)
        assert run.code == 5, str(run)
        assert "no codec keys are configured" in run.stderr and "FLOWCTL_CODEC__KEYS" in run.stderr
    shown = plain("history", wid)
    assert shown.code == 0 and "<encrypted with key 'k2'>" in shown.stdout
    # watch asks the status query after each page; without the key it must say so, not hang.
    watched = plain("watch", wid, timeout=60)
    assert watched.code == 5 and "no codec keys are configured" in watched.stderr, str(watched)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("k1", "entry 1 is not ID:BASE64"),
        ("k1:bm90IGEga2V5", "key 'k1' is not base64 of 16, 24 or 32 bytes"),
        (f"{K1},{K1}", "key id 'k1' appears twice"),
        ("bad id:" + K1.split(":", 1)[1], "entry 1 is not ID:BASE64"),
        (" , ", "no key given"),
    ],
)
def test_malformed_keys_exit_2_naming_the_entry_and_never_the_key(
    stack: Stack, queue: str, keys: str, message: str
) -> None:
    before = stack.cli("list", "--query", f"TaskQueue = '{queue}'", "-o", "json").json()
    run = cli_with(stack, queue, keys)(
        "start", "onboarding", "--set", "user_id=x", "--set", "email=a@b.co", "--set", "name=n"
    )
    assert run.code == 2, str(run)
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1
    for part in keys.replace(",", ":").split(":"):
        if len(part) > 8:
            assert part not in run.stderr
    assert stack.cli("list", "--query", f"TaskQueue = '{queue}'", "-o", "json").json() == before


def test_codec_key_makes_a_usable_key() -> None:
    run = subprocess.run([FLOWCTL, "codec-key", "--id", "2026-11"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0
    key_id, encoded = run.stdout.strip().split(":")
    assert key_id == "2026-11" and len(base64.b64decode(encoded)) == 32
    bad = subprocess.run([FLOWCTL, "codec-key", "--id", "no way"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "--id" in bad.stderr


class CodecServer:
    def __init__(self, cli: Cli, port: str = "0", *args: str) -> None:
        self.process = subprocess.Popen(
            [FLOWCTL, "codec-server", "--port", port, *args],
            env=cli.env,
            cwd=cli.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        match = re.search(r"listening on (http://[\d.]+:\d+)", line)
        assert match, line + self.process.stderr.read()
        self.url = match.group(1)

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return self.request("POST", path, body, headers)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def stop(self) -> tuple[int, str]:
        self.process.terminate()
        _, err = self.process.communicate(timeout=30)
        return self.process.returncode, err


def test_codec_server_decodes_for_the_ui_origin_only(stack: Stack, queue: str) -> None:
    from google.protobuf.json_format import MessageToJson
    from temporalio.api.common.v1 import Payloads

    cli = cli_with(stack, queue, f"{K2},{K1}")
    wid, email = onboard(cli)
    assert cli("result", wid, "--timeout", "30s").code == 0
    sealed = Payloads(payloads=payloads_of(raw_history(stack, wid)).values())
    body = MessageToJson(sealed).encode()
    server = CodecServer(cli)
    try:
        ui = re.sub(r"/+$", "", stack.cli("describe", wid, "-o", "json").json()["ui_url"].split("/namespaces/")[0])
        status, headers, answer = server.post(
            "/decode", body, {"Content-Type": "application/json", "X-Namespace": "default", "Origin": ui}
        )
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == ui
        decoded = json.loads(answer)["payloads"]
        texts = [base64.b64decode(p.get("data", "")).decode() for p in decoded]
        assert any(email in t for t in texts)
        assert {base64.b64decode(p["metadata"]["encoding"]) for p in decoded} <= {b"json/plain", b"binary/null"}

        # The browser's preflight from the UI is allowed; from any other origin it is refused.
        status, headers, _ = server.request(
            "OPTIONS", "/decode", headers={"Origin": ui, "Access-Control-Request-Method": "POST"}
        )
        assert status == 204 and headers["Access-Control-Allow-Origin"] == ui
        for method in ("OPTIONS", "POST"):
            status, headers, answer = server.request(
                method, "/decode", body if method == "POST" else None, {"Origin": "http://evil.example"}
            )
            assert status == 403 and "Access-Control-Allow-Origin" not in headers
            assert email not in answer.decode()

        # Encode seals with the active key; decode gives the original back.
        plain = Payloads(payloads=[cli_payload({"hello": "world"})])
        status, _, sealed_json = server.post("/encode", MessageToJson(plain).encode())
        assert status == 200
        assert base64.b64decode(json.loads(sealed_json)["payloads"][0]["metadata"]["encryption-key-id"]) == b"k2"
        status, _, opened = server.post("/decode", sealed_json)
        assert json.loads(base64.b64decode(json.loads(opened)["payloads"][0]["data"])) == {"hello": "world"}
        assert server.post("/decode", b"not json")[0] == 400
        assert server.request("GET", "/decode")[0] == 405
        # A payload cut short, or altered, is left sealed; the others in the batch still open.
        broken = Payloads()
        broken.CopyFrom(sealed)
        broken.payloads[0].data = broken.payloads[0].data[:10]
        broken.payloads[1].data = broken.payloads[1].data[:-1] + bytes([broken.payloads[1].data[-1] ^ 1])
        status, _, answer = server.post("/decode", MessageToJson(broken).encode())
        opened_payloads = json.loads(answer)["payloads"]
        assert status == 200 and len(opened_payloads) == len(sealed.payloads)
        encodings = [base64.b64decode(p["metadata"]["encoding"]) for p in opened_payloads]
        assert encodings[:2] == [b"binary/encrypted"] * 2 and b"binary/encrypted" not in encodings[2:]
        # A body over the limit is refused before it is read.
        oversize = {"Content-Type": "application/json", "Content-Length": str(64 * 1024 * 1024)}
        assert raw_post(server.url, "/decode", oversize) == 413
    finally:
        code, log = server.stop()
    assert code == 0
    assert email not in log and K2.split(":")[1] not in log


def raw_post(url: str, path: str, headers: dict[str, str]) -> int:
    """Send only the request line and headers; the status the server answers with."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    conn.putrequest("POST", path)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def test_codec_server_stops_promptly_with_an_idle_client_connected(stack: Stack, queue: str) -> None:
    """Browsers keep connections open; SIGTERM must not wait for them (nor for a stalled body)."""
    import socket

    server = CodecServer(cli_with(stack, queue, K1))
    host, port = server.url.removeprefix("http://").split(":")
    idle = socket.create_connection((host, int(port)))
    stalled = socket.create_connection((host, int(port)))
    stalled.sendall(b"POST /decode HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    time.sleep(0.5)
    began = time.monotonic()
    try:
        code, _ = server.stop()
    finally:
        idle.close()
        stalled.close()
    assert code == 0 and time.monotonic() - began < 5


def cli_payload(value: object) -> Any:
    from temporalio.api.common.v1 import Payload

    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def test_codec_server_without_keys_exits_2(stack: Stack, queue: str) -> None:
    started = time.monotonic()
    run = cli_with(stack, queue, None)("codec-server", "--port", "0", timeout=30)
    assert run.code == 2 and "no codec keys configured" in run.stderr
    assert time.monotonic() - started < 30


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it where it can)")
def test_the_web_ui_shows_decrypted_payloads_through_the_codec_server(tmp_path: Path) -> None:
    """The embedded server's UI, told of the codec server, shows the email; without it, it cannot."""
    codec_port = free_port()
    config = write_config(tmp_path, port=free_port(), task_queue=uid("tq-ui-codec-"))
    env = {
        **isolated_env(tmp_path, config),
        "FLOWCTL_CODEC__KEYS": K1,
        "FLOWCTL_SERVER__UI_CODEC_ENDPOINT": f"http://127.0.0.1:{codec_port}",
    }
    cli = Cli(env, tmp_path)
    assert cli("server", "start", timeout=120).code == 0
    worker = cli.worker()
    server = None
    try:
        server = CodecServer(cli, str(codec_port))
        wid, email = onboard(cli)
        done = cli("result", wid, "--timeout", "30s", "-o", "json")
        assert done.code == 0, str(done)
        url = cli("describe", wid, "-o", "json").json()["ui_url"]
        page = rendered(url)
        assert f"Workflow History | {wid}" in page
        assert email in page
        code, log = server.stop()
        server = None
        assert code == 0 and "POST /decode" in log and email not in log
        # The same page with the codec server gone: the UI has only ciphertext to show.
        assert email not in rendered(url)
    finally:
        if server is not None:
            server.stop()
        stop_process(worker)
        cli("server", "stop")
