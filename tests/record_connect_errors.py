"""Record the transport errors the SDK reports for each way a connection fails, into
tests/connect_errors.json, for the unit tests of `connect.diagnose`'s rules.

    cd tests && ../.venv/bin/python record_connect_errors.py     # needs nginx

It stands up what the TLS tests use (a dev server, nginx terminating TLS with a client CA and
an API key, a TLS port that drops the handshake) and connects to each wrongly, keeping the
error text and the settings it was made with (never the key or the certificates themselves).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from conftest import FLOWCTL, free_port, isolated_env, write_config
from tlsproxy import Authority, Pair, start_proxy, strict_tls_server

from flowctl import connect
from flowctl.connect import Target

RECORDED = Path(__file__).parent / "connect_errors.json"
API_KEY = "fk-record-1"


def settings(target: Target) -> dict[str, Any]:
    """How the target was set up, as the unit test rebuilds it."""
    tls = target.tls
    return {
        "tls": "sdk" if tls is None else "off" if tls is False else "on" if tls is True else "config",
        "client_cert": bool(getattr(tls, "client_cert", None)),
        "api_key": bool(target.api_key),
    }


def silent_port() -> int:
    """A TCP server that accepts and never says anything."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            held.append(listener.accept()[0])

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1])


def http1_port(ca: Authority | None = None) -> int:
    """A plain HTTP/1 server (Python's own), over TLS with a certificate from `ca` when given."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    if ca is not None:
        pair = ca.issue("http1", "localhost", server=True)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pair.cert, pair.key)
        context.set_alpn_protocols(["h2", "http/1.1"])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


def tls(ca: Authority | None, client: Pair | None = None, server_name: str | None = None) -> Any:
    from temporalio.service import TLSConfig

    return TLSConfig(
        server_root_ca_cert=ca.pair.cert.read_bytes() if ca else None,
        client_cert=client.cert.read_bytes() if client else None,
        client_private_key=client.key.read_bytes() if client else None,
        domain=server_name,
    )


async def record_all(root: Path) -> dict[str, Any]:
    port = free_port()
    env = isolated_env(root, write_config(root, port=port, task_queue="record"))
    started = subprocess.run([FLOWCTL, "server", "start", "-o", "json"], env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    ui = json.loads(started.stdout)["ui_url"].removeprefix("http://")
    ca, rogue = Authority(root, "ca"), Authority(root, "rogue-ca")
    client, intruder = ca.issue("client", "flowctl", server=False), rogue.issue("rogue", "intruder", server=False)
    proxy = start_proxy(
        root / "nginx",
        port=free_port(),
        upstream=f"127.0.0.1:{port}",
        server=ca.issue("server", "localhost", server=True),
        client_ca=ca.pair.cert,
        api_key=API_KEY,
    )
    stack = contextlib.ExitStack()
    strict = stack.enter_context(strict_tls_server(ca))
    closed = free_port()
    cases = {
        "connection refused": Target(f"127.0.0.1:{closed}", "default"),
        "no client certificate": Target(proxy.address, "default", api_key=API_KEY, tls=tls(ca)),
        "client certificate from another CA": Target(proxy.address, "default", api_key=API_KEY, tls=tls(ca, intruder)),
        "no API key": Target(proxy.address, "default", tls=tls(ca, client)),
        "wrong API key": Target(proxy.address, "default", api_key="fk-wrong", tls=tls(ca, client)),
        "an HTTP/1 server": Target(ui, "default", tls=False),
        "server CA not given": Target(proxy.address, "default", api_key=API_KEY, tls=tls(None, client)),
        "wrong server name": Target(proxy.address, "default", api_key=API_KEY, tls=tls(ca, client, "temporal.example")),
        "TLS to a plain server": Target(f"127.0.0.1:{port}", "default", tls=tls(ca, client)),
        "an API key to a plain server": Target(f"127.0.0.1:{port}", "default", api_key=API_KEY),
        "plain to the TLS proxy": Target(proxy.address, "default", tls=False),
        "handshake dropped, no client certificate": Target(f"localhost:{strict}", "default", tls=tls(ca)),
        "handshake dropped, rogue certificate": Target(f"localhost:{strict}", "default", tls=tls(ca, intruder)),
        "a silent server": Target(f"127.0.0.1:{silent_port()}", "default", tls=False),
        "a plain HTTP/1 server": Target(f"127.0.0.1:{http1_port()}", "default", tls=False),
        "an HTTP/1 server over TLS": Target(f"localhost:{http1_port(ca)}", "default", tls=tls(ca)),
    }
    recorded: dict[str, Any] = {}
    seen: list[str] = []
    real = connect.diagnose

    def spy(target: Target, detail: str) -> Any:
        seen.append(detail)
        return real(target, detail)

    connect.diagnose = spy
    try:
        for case, target in cases.items():
            seen.clear()
            try:
                await connect.connect_service(target)  # it asks the server for its system info
            except Exception:  # noqa: BLE001, S110 - recording what it says
                pass
            if seen:
                detail = seen[-1].replace(API_KEY, "<key>")
                recorded[case] = {"address": target.address, **settings(target), "detail": detail}
                print(f"{case}: {detail[:100]}")
            else:
                print(f"{case}: connected (nothing to record)", file=sys.stderr)
    finally:
        connect.diagnose = real
        stack.close()
        proxy.stop()
        subprocess.run([FLOWCTL, "server", "stop"], env=env, capture_output=True)
    return recorded


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        recorded = asyncio.run(record_all(Path(tmp)))
    RECORDED.write_text(json.dumps(recorded, indent=2, ensure_ascii=False) + "\n")
    print(f"recorded {len(recorded)} errors into {RECORDED}")
    sys.stdout.flush()
    os._exit(0)  # a process that used the SDK's runtime may hang at the interpreter's exit


if __name__ == "__main__":
    main()
