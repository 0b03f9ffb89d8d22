"""`flowctl codec-server` and `flowctl codec-key`: the encrypted-payload codec for the Web UI and for keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from flowctl.cli.app import OPERATE, app, state

if TYPE_CHECKING:
    from flowctl.config import Settings


@app.command(
    rich_help_panel=OPERATE,
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
    import errno
    import ipaddress
    import signal
    import socket
    import threading

    from flowctl import codecserver
    from flowctl.codec import KEYS_SETTING, keyring
    from flowctl.errors import UsageError

    app_ = state(ctx)
    settings = app_.settings()
    keys = keyring(settings.codec)
    if keys is None:
        raise UsageError(
            "codec-server: no codec keys configured", hint=f"{KEYS_SETTING}; 'flowctl codec-key' makes one"
        )
    origins = frozenset(_origin(o) for o in origin) if origin else _ui_origins(settings)

    def log(line: str) -> None:
        """One line per request or event on stderr; never a payload or a key."""
        app_.output.say(f"codec-server: {line}")

    try:
        server = codecserver.make_server(keys, host, port, origins, log)
    except OSError as exc:
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            raise UsageError(f"--host {host}: cannot listen there: {exc.strerror}") from None
        raise UsageError(f"--port {port}: cannot listen on {host}:{port}: {exc.strerror}") from None

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bound_host, bound_port = str(server.server_address[0]), server.server_address[1]
    if not ipaddress.ip_address(socket.gethostbyname(bound_host)).is_loopback:
        log(f"warning: listening on {bound_host}, not loopback: anyone who reaches it can decrypt payloads")
    app_.output.say(
        f"codec server listening on http://{bound_host}:{bound_port} "
        f"(CORS: {', '.join(sorted(origins))}; sealing with key {keys.active!r})"
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def _ui_origins(settings: Settings) -> frozenset[str]:
    """The Web UI's origin; for the embedded server's UI, by its IP as well as by localhost."""
    from flowctl.config import ui_base_url

    origins = {_origin(ui_base_url(settings))}
    if settings.ui_url is None:
        origins.add(f"http://{settings.server.ip}:{settings.server.effective_ui_port}")
    return frozenset(origins)


def _origin(url: str) -> str:
    """`scheme://host[:port]` of a URL: what a browser sends as `Origin`."""
    from urllib.parse import urlsplit

    from flowctl.errors import UsageError

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--origin {url!r} is not an http(s) origin", hint="e.g. --origin http://localhost:8233")
    return f"{parts.scheme}://{parts.netloc}"


@app.command(
    rich_help_panel=OPERATE,
    name="codec-key",
    epilog='Example: echo "$(flowctl codec-key --id 2026-11),$FLOWCTL_CODEC__KEYS"',
)
def codec_key(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Option("--id", help="key id stored beside every payload it seals")] = "k1",
) -> None:
    """Print a new random AES-256 key as ID:BASE64, for codec.keys or FLOWCTL_CODEC__KEYS."""
    from flowctl.codec import new_key_line

    line = new_key_line(key_id)
    app_ = state(ctx)
    app_.output.data({"id": key_id, "entry": line}, lambda out: out.write(line))
