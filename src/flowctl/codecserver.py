"""The payload codec over HTTP, for the Web UI and `temporal --codec-endpoint`.

It speaks Temporal's remote-codec protocol: `POST /encode` and `POST /decode` with a body of
proto-JSON `{"payloads": [...]}`, answered in kind. Browsers may call it only from the
allowed origins (the Web UI's, by default): a request carrying any other `Origin` is refused
with 403 and no CORS headers. Anyone who can reach it can decrypt, so it binds to loopback
unless told otherwise. Slow or idle clients are cut off after a timeout, requests in flight
are capped, and shutdown does not wait for idle connections. Nothing it logs holds a
payload or a key.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowctl.codec import KeyRing

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_IN_FLIGHT = 32
REQUEST_TIMEOUT_SECONDS = 15.0
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"


def transform(keys: KeyRing, action: str, body: bytes, log: Callable[[str], None]) -> bytes:
    """Seal or open every payload of a proto-JSON `Payloads` body; ValueError if it is not one."""
    from google.protobuf.json_format import MessageToJson, Parse, ParseError
    from temporalio.api.common.v1 import Payloads

    from flowctl.codec import sealed_key_id
    from flowctl.errors import KeyMissingError

    try:
        payloads = Parse(body.decode("utf-8"), Payloads())
    except (ParseError, UnicodeDecodeError) as exc:
        raise ValueError(f"body is not proto-JSON Payloads: {str(exc).splitlines()[0][:200]}") from None
    out = Payloads()
    for payload in payloads.payloads:
        if action == "encode":
            out.payloads.append(keys.seal(payload))
            continue
        try:
            out.payloads.append(keys.open(payload))
        except KeyMissingError:
            # Left sealed: the UI shows it as it is stored rather than failing the whole page.
            log(
                f"left sealed: a payload of key {sealed_key_id(payload)!r} (no such key here, or it fails authentication)"
            )
            out.payloads.append(payload)
    return MessageToJson(out, indent=None).encode()


def make_handler(keys: KeyRing, origins: frozenset[str], log: Callable[[str], None]) -> type[BaseHTTPRequestHandler]:
    in_flight = threading.BoundedSemaphore(MAX_IN_FLIGHT)

    class Handler(BaseHTTPRequestHandler):
        server_version = "flowctl-codec"
        sys_version = ""
        timeout = REQUEST_TIMEOUT_SECONDS  # per socket read: a client that stalls is cut off

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass  # one line per request is written by _answer, without the client's data

        def _origin_ok(self) -> bool:
            origin = self.headers.get("Origin")
            return origin is None or origin in origins

        def _answer(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
            self.send_response(status)
            origin = self.headers.get("Origin")
            if origin is not None and origin in origins:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                self.send_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
                self.send_header("Access-Control-Max-Age", "600")
            self.send_header("Vary", "Origin")
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)
            log(f"{self.command} {self.path} {status}")

        def _error(self, status: int, message: str) -> None:
            self._answer(status, json.dumps({"error": message}).encode())

        def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
            if not self._origin_ok():
                self._error(403, "origin not allowed")
                return
            self._answer(204)

        def do_POST(self) -> None:  # noqa: N802
            if not self._origin_ok():
                self._error(403, "origin not allowed")
                return
            if not in_flight.acquire(blocking=False):
                self._error(503, f"busy: {MAX_IN_FLIGHT} requests in flight")
                return
            try:
                self._post()
            finally:
                in_flight.release()

        def _post(self) -> None:
            action = self.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            if action not in ("encode", "decode"):
                self._error(404, "POST /encode or /decode")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY_BYTES:
                self._error(413 if length > 0 else 400, f"body must be 0..{MAX_BODY_BYTES} bytes with Content-Length")
                return
            try:
                body = transform(keys, action, self.rfile.read(length), log)
            except ValueError as exc:
                self._error(400, str(exc))
                return
            self._answer(200, body)

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0].rstrip("/")
            if path in ("", "/health"):
                self._answer(200, json.dumps({"codec": "AES-GCM", "keys": list(keys.ids)}).encode())
            elif path.rsplit("/", 1)[-1] in ("encode", "decode"):
                self._error(405, "use POST")
            else:
                self._error(404, "POST /encode or /decode")

    return Handler


def make_server(
    keys: KeyRing, host: str, port: int, origins: frozenset[str], log: Callable[[str], None]
) -> ThreadingHTTPServer:
    """A server ready for `serve_forever`; OSError if the address cannot be bound."""
    server = ThreadingHTTPServer((host, port), make_handler(keys, origins, log))
    server.daemon_threads = True  # an idle keep-alive connection must not hold up shutdown
    server.block_on_close = False
    return server
