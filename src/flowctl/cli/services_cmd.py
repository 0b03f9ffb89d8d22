"""`flowctl services check`: the bridge's route table, each route checked against its service."""

from __future__ import annotations

from typing import Any

import typer

from flowctl.cli import render
from flowctl.cli.app import OPERATE, app, fail, require_subcommand, state

services_app = typer.Typer(help="The business services the workflows' steps call.", no_args_is_help=True)
services_app.callback()(require_subcommand)
app.add_typer(services_app, name="services", rich_help_panel=OPERATE)


@services_app.command(
    epilog="Examples: flowctl services check;  flowctl services check -o json\n\n"
    "Exit codes: 0 every route can work; 2 a route is wrong (no route for a command, a bad mapping, "
    "a path the service does not serve); 5 a service does not answer."
)
def check(ctx: typer.Context) -> None:
    """Check what `flowctl worker` checks at start: every command has a route, its service answers and serves it."""
    import asyncio

    from flowctl import worker
    from flowctl.config import ledger_path
    from flowctl.errors import ExitCode

    app_ = state(ctx)
    settings = app_.settings()
    if settings.services.bridge == "local":
        info = {"bridge": "local", "ledger": str(ledger_path(settings)), "routes": []}
        app_.output.data(info, lambda out: out.print(f"bridge local: the reference services, ledger {info['ledger']}"))
        return
    bridge = worker.http_bridge(settings)  # a route that cannot work is refused here, naming its key

    async def checked() -> list[Any]:
        try:
            return await worker.check_services(bridge)
        finally:
            await bridge.close()

    app_.doing = "checking the services' routes; nothing was changed"
    rows = [vars(row) | {"ok": row.ok} for row in asyncio.run(checked())]
    app_.output.data({"bridge": "http", "routes": rows}, lambda out: render.routes(out, rows))
    down = any(row["state"].startswith("service down") for row in rows)
    fail(ExitCode.UNREACHABLE if down else ExitCode.USAGE if not all(row["ok"] for row in rows) else ExitCode.OK)
