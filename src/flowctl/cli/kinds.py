"""`flowctl kinds`: the catalog, read locally (no server)."""

from __future__ import annotations

from typing import Annotated

import typer

from flowctl.cli import render
from flowctl.cli.app import INSPECT, app, state
from flowctl.cli.options import complete_kind


@app.command(rich_help_panel=INSPECT, epilog="Examples: flowctl kinds;  flowctl kinds order -o json | jq .example")
def kinds(
    ctx: typer.Context,
    kind: Annotated[
        str | None, typer.Argument(help="show one kind in full", autocompletion=complete_kind, show_default=False)
    ] = None,
) -> None:
    """List workflow kinds, or show one: input schema, example, signals, queries, updates."""
    from flowctl import catalog

    app_ = state(ctx)
    task_queue = app_.settings().task_queue
    if kind is None:
        rows = [
            {
                "name": k.name,
                "workflow_type": k.workflow_type,
                "id_template": k.id_template,
                "description": k.description,
            }
            for k in map(catalog.get, catalog.names())
        ]
        app_.output.data(rows, lambda out: out.table(rows, ["name", "workflow_type", "id_template", "description"]))
        return
    described = catalog.describe(catalog.get(kind), task_queue)
    app_.output.data(described, lambda out: render.kind(out, described))
