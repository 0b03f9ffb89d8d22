"""`flowctl ledger`: what the `local` services recorded (stock, charges, refunds, shipments, outbox)."""

from __future__ import annotations

from typing import Annotated

import typer

from flowctl.cli import render
from flowctl.cli.app import INSPECT, app, state

LEDGER_HINT = "fix or move the file, or set services.local.db to another path"


@app.command(
    rich_help_panel=INSPECT, epilog="Examples: flowctl ledger --order A-1001 -o json;  flowctl ledger --ref u-1001"
)
def ledger(
    ctx: typer.Context,
    ref: Annotated[
        str | None,
        typer.Option("--ref", "--order", help="only rows of this order, user or request id", show_default=False),
    ] = None,
) -> None:
    """Read the local services' ledger (the SQLite file of the `local` bridge)."""
    from flowctl.config import ledger_path
    from flowctl.errors import UsageError
    from flowctl_workflows.services.local import LEDGER_TABLES, LedgerError, read_ledger

    app_ = state(ctx)
    path = ledger_path(app_.settings())
    try:
        data = read_ledger(path, ref)
    except LedgerError as exc:
        raise UsageError(str(exc), hint=LEDGER_HINT) from None
    tables = ("stock", *LEDGER_TABLES)
    app_.output.data({"ledger": str(path), **data}, lambda out: render.ledger(out, str(path), data, tables))
