"""A real HTTP server on loopback whose answers a test scripts: each request recorded, each
answered by `answers[path]` (a function of what was sent). It stands in for a service over
HTTP where the test says what the service does."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the body read as JSON; None when it is not JSON
    raw: bytes = b""


# An answer: (status, headers, body); the body a dict is sent as JSON.
Answer = tuple[int, dict[str, str], Any]


@dataclass(frozen=True)
class Trickle:
    """A body the server sends one byte every `pause` seconds."""

    data: bytes
    pause: float


def no_route(seen: Seen) -> Answer:
    return 404, {}, {"message": "no route"}


@dataclass
class Service:
    """A loopback HTTP server: each request recorded, each answered by `answers[path]`."""

    answers: dict[str, Callable[[Seen], Answer]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0


@contextlib.contextmanager
def serving() -> Iterator[Service]:
    state = Service()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, raw)
            state.seen.append(seen)
            route = self.path.split("?", 1)[0]
            status, headers, answer = state.answers.get(route, no_route)(seen)
            if isinstance(answer, Trickle):  # a body sent a byte at a time, slowly
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer.data)))
                self.end_headers()
                for byte in answer.data:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(answer.pause)
                return
            if isinstance(answer, bytes):
                data = answer
            else:
                data = json.dumps(answer).encode() if isinstance(answer, dict | list) else (answer or "").encode()
            self.send_response(status)
            for key, value in {"content-type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: its choice
                pass

        do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
