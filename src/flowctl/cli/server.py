"""`flowctl server start|stop|status`: the embedded Temporal dev server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from flowctl.cli import render
from flowctl.cli.app import OPERATE, app, fail, require_subcommand, state
from flowctl.errors import ExitCode

if TYPE_CHECKING:
    from temporalio.client import Client

server_app = typer.Typer(
    help="Run the embedded Temporal dev server (persistent, with Web UI) in the background.",
    epilog="Example: flowctl server start && flowctl server status",
    invoke_without_command=True,
)
server_app.callback()(require_subcommand)
app.add_typer(server_app, name="server", rich_help_panel=OPERATE)


@server_app.command(epilog="Example: flowctl server start -o json")
def start(ctx: typer.Context) -> None:
    """Start the server unless it runs; return once it answers."""
    from flowctl import devserver

    app_ = state(ctx)
    info = devserver.start(app_.settings())
    if not info["started"]:
        app_.output.info("the embedded server was already running")
    app_.output.data(info, lambda out: render.server(out, info))


@server_app.command(epilog="Example: flowctl server stop")
def stop(ctx: typer.Context) -> None:
    """Stop the server started by `flowctl server start`."""
    from flowctl import devserver

    app_ = state(ctx)
    info = devserver.stop(app_.settings())
    app_.output.data(
        info, lambda out: out.print("stopped" if info["stopped"] else info.get("note", "not running"), markup=False)
    )


@server_app.command(epilog="Example: flowctl server status -o json")
def status(ctx: typer.Context) -> None:
    """Say whether the server runs, and where its address, data file and UI are; exit 5 if it does not answer."""
    from flowctl import devserver

    app_ = state(ctx)
    info = devserver.status(app_.settings())
    app_.output.data(info, lambda out: render.server(out, info))
    if not info["answering"]:
        fail(ExitCode.UNREACHABLE)  # scripts can branch on it, as the help says


@server_app.command(epilog="Example: flowctl --address temporal.internal:7233 --namespace orders server setup")
def setup(ctx: typer.Context) -> None:
    """Register flowctl's search attributes on the configured cluster (the embedded server has them)."""
    from flowctl import searchattrs
    from flowctl.ops import rpc
    from flowctl_workflows.attributes import TYPES as SEARCH_ATTRIBUTES

    app_ = state(ctx)

    async def action(client: Client) -> list[str]:
        with rpc.rpc_errors():
            return await searchattrs.register(client)

    added = app_.run(action)
    info = {"namespace": app_.target().namespace, "added": added, "search_attributes": SEARCH_ATTRIBUTES}
    app_.output.data(
        info,
        lambda out: out.print(
            f"registered {', '.join(added)}" if added else "flowctl's search attributes are already registered",
            markup=False,
        ),
    )
