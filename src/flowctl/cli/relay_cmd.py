"""`flowctl relay`: the long-running process that turns PURISTA events into workflow signals."""

from __future__ import annotations

from typing import Annotated

import typer

from flowctl.cli.app import OPERATE, app, state


@app.command(
    rich_help_panel=OPERATE,
    epilog="Example: flowctl relay --port 8092   (a PURISTA subscription POSTs its events to http://HOST:8092/)\n\n"
    "Answers: 200 delivered (a redelivered event too, once); 401 no or wrong token; 400 not an event; "
    "404/409 no such workflow, or it has ended; 422 unmapped event or invalid payload; 503 try again.",
)
def relay(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="address to bind (default: relay.host, 127.0.0.1)")] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="port to listen on; 0: any free (default: relay.port)"),
    ] = None,
) -> None:
    """Serve the endpoint PURISTA subscriptions POST events to; each mapped event signals (or updates) its workflow."""
    import asyncio
    import signal

    from flowctl import config, tracing
    from flowctl import relay as core
    from flowctl.connect import connect, quiet_runtime

    app_ = state(ctx)
    settings = config.with_flags(app_.settings(), {"relay.host": ("--host", host), "relay.port": ("--port", port)})
    options = settings.relay
    mappings = core.compile_events(options)  # a bad mapping or token is refused before anything is contacted
    token = core.relay_token(options)
    target = app_.target()

    async def main() -> None:
        runtime = None if app_.debug else quiet_runtime()  # Core's own warnings only with --debug
        client = await connect(target, runtime=runtime, interceptors=tracing.interceptors(settings))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        delivering = core.Relay(client, mappings, task_queue=settings.task_queue, update_timeout=options.update_timeout)

        def ready(bound: int) -> None:
            events = ", ".join(sorted(mappings)) or "none mapped"
            host = f"[{options.host}]" if ":" in options.host else options.host
            app_.output.say(
                f"flowctl relay ready: listening on http://{host}:{bound}/ for events ({events}); "
                f"Temporal at {target.address} (namespace {target.namespace})"
            )

        try:
            await core.serve(delivering, token, options.host, options.port, on_ready=ready, stop=stop)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    try:
        asyncio.run(main())
    finally:
        tracing.flush(5000)
    app_.output.say("flowctl relay stopped")
