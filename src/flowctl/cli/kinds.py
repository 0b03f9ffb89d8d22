"""`flowctl kinds`: the catalog, read locally (no server)."""

from __future__ import annotations

from typing import Annotated

import typer

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
        app_.output.data(
            rows, lambda out: app_.output.table(rows, ["name", "workflow_type", "id_template", "description"])
        )
        return
    described = catalog.describe(catalog.get(kind), task_queue)
    app_.output.data(described, lambda out: _print_kind(app_.output, described))


def _print_kind(output: object, kind: dict[str, object]) -> None:
    from flowctl.output import Output, to_json

    assert isinstance(output, Output)
    out = output.out
    out.print(f"[bold]{kind['name']}[/bold] — {kind['description']}")
    out.print(
        f"workflow type {kind['workflow_type']}, task queue {kind['task_queue']}, id {kind['id_template']}",
        markup=False,
    )
    schema = kind["input_schema"]
    assert isinstance(schema, dict)
    required = set(schema.get("required", []))
    out.print("\ninput fields:")
    for name, prop in schema.get("properties", {}).items():
        mark = "required" if name in required else f"default {to_json(prop.get('default'))}"
        out.print(f"  {name:<18} {mark:<26} {prop.get('description', '')}", markup=False)
    for group in ("signals", "queries", "updates"):
        messages = kind[group]
        assert isinstance(messages, list)
        if not messages:
            out.print(f"{group}: none", markup=False)
        for m in messages:
            fields = ""
            if group != "queries" and m["schema"]:
                needed = set(m["schema"].get("required", []))
                fields = (
                    " ("
                    + ", ".join(name if name in needed else f"[{name}]" for name in m["schema"].get("properties", {}))
                    + ")"
                )
            out.print(
                f"{group[:-1] if group != 'queries' else 'query'}: {m['name']}{fields} — {m['description']}",
                markup=False,
            )
    out.print("\nexample input:")
    out.print(to_json(kind["example"], indent=2), markup=False)
    failures = kind.get("failure_inputs") or {}
    if failures:
        out.print("\ninputs that fail on purpose with the local services:")
        for what, how in failures.items():  # type: ignore[attr-defined]
            out.print(f"  {what}: {how}", markup=False)
