"""`flowctl codec-server` and `flowctl codec-key`: the encrypted-payload codec for the Web UI and for keys."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from flowctl.cli.app import app, state


@app.command(
    name="codec-server",
    epilog="Example: FLOWCTL_CODEC__KEYS=k1:... flowctl codec-server --port 8081, then "
    "flowctl config set server.ui_codec_endpoint http://127.0.0.1:8081 and restart the server",
)
def codec_server(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="port to listen on (0: any free)")] = 8081,
    host: Annotated[str, typer.Option("--host", help="address to bind; anyone who reaches it can decrypt")] = (
        "127.0.0.1"
    ),
    origin: Annotated[
        list[str] | None,
        typer.Option("--origin", help="browser origin allowed to call it (repeatable); default: the Web UI's"),
    ] = None,
) -> None:
    """Serve the payload codec over HTTP so the Web UI shows decrypted inputs and results."""
    from flowctl import codecserver
    from flowctl.errors import UsageError

    app_ = state(ctx)
    keys = app_.target().keys
    if keys is None:
        raise UsageError(
            "codec-server: no codec keys configured",
            hint="set FLOWCTL_CODEC__KEYS or codec.keys_file; 'flowctl codec-key' makes a key",
        )
    origins = frozenset(_origin(o) for o in (origin or [app_.ui_base()]))
    try:
        codecserver.serve(keys, host, port, origins, on_ready=lambda line: print(line, file=sys.stderr, flush=True))
    except OSError as exc:
        raise UsageError(f"--port {port}: cannot listen on {host}:{port}: {exc.strerror}") from None


def _origin(url: str) -> str:
    """`scheme://host[:port]` of a URL: what a browser sends as `Origin`."""
    from urllib.parse import urlsplit

    from flowctl.errors import UsageError

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--origin {url!r} is not an http(s) origin", hint="e.g. --origin http://localhost:8233")
    return f"{parts.scheme}://{parts.netloc}"


@app.command(name="codec-key", epilog='Example: echo "$(flowctl codec-key --id 2026-11),$FLOWCTL_CODEC__KEYS"')
def codec_key(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Option("--id", help="key id stored beside every payload it seals")] = "k1",
) -> None:
    """Print a new random AES-256 key as ID:BASE64, for codec.keys or FLOWCTL_CODEC__KEYS."""
    from flowctl.codec import new_key_line

    line = new_key_line(key_id)
    app_ = state(ctx)
    app_.output.data({"id": key_id, "entry": line}, lambda out: print(line, flush=True))
