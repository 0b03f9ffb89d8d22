"""Batch operations by visibility query, shared by `cancel`, `terminate` and `signal`."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowctl.cli.app import App, fail

if TYPE_CHECKING:
    from temporalio.client import Client

    from flowctl.ops.visibility import Execution

QueryOpt = Annotated[
    str | None,
    typer.Option("--query", help="act on every running workflow this visibility query selects", show_default=False),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="with --query: list what would be touched; touch nothing")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="with --query: do not ask (required without a terminal)")]
LimitOpt = Annotated[
    int, typer.Option("--limit", metavar="N", min=1, max=100_000, help="with --query: at most this many")
]
PROMPT_SHOWS = 10  # matches listed above the confirmation question


def target(workflow_id: str | None, query: str | None) -> None:
    """Exactly one of an id or --query."""
    from flowctl.errors import UsageError

    if (workflow_id is None) == (query is None):
        raise UsageError(
            "give a workflow id or --query, not both or neither", hint="e.g. --query \"FlowKind = 'order'\""
        )


def run(
    app_: App,
    verb: str,
    query: str,
    action: Callable[[Client, str], Awaitable[None]],
    *,
    dry_run: bool,
    yes: bool,
    limit: int,
    check: Callable[[list[Execution]], None] | None = None,
) -> None:
    """Select, check, confirm, act, report: one JSON line (or table row) per workflow touched.

    `check` sees every match before anything is touched, --dry-run included: what it refuses
    (a signal one of their kinds lacks, a payload it would reject) fails the whole batch.
    """
    from flowctl.errors import InterruptedByUser, UsageError, overall
    from flowctl.ops import bulk, visibility

    out = app_.output

    async def select(client: Client) -> list[Execution]:
        return await visibility.running_matches(client, query, limit)

    matches = app_.run(select)
    if check is not None:
        check(matches)
    ids = [row.workflow_id for row in matches]
    if dry_run or not ids:
        rows = [{"workflow_id": r.workflow_id, "kind": r.kind, "status": r.flow_status, "would": verb} for r in matches]
        out.info(
            f"{len(ids)} running workflow(s) match; {'nothing touched (--dry-run)' if dry_run else 'nothing to do'}"
        )
        out.data(rows, lambda o: out.table(rows, ["workflow_id", "kind", "status", "would"]) if rows else None)
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"refusing to {verb} {len(ids)} workflow(s) without --yes", hint="check them with --dry-run first"
            )
        for row in matches[:PROMPT_SHOWS]:
            about = ", ".join(str(v) for v in (row.kind, row.flow_status) if v)
            out.info(f"  {row.workflow_id}  ({about})" if about else f"  {row.workflow_id}")
        if len(matches) > PROMPT_SHOWS:
            out.info(f"  ... and {len(matches) - PROMPT_SHOWS} more (--dry-run lists them all)")
        if not typer.confirm(f"{verb} {len(ids)} workflow(s)?", err=True):
            raise InterruptedByUser(
                f"not confirmed: nothing touched ({len(ids)} workflow(s) left as they were)", terminated=False
            )

    async def act(client: Client) -> list[dict[str, Any]]:
        return await bulk.for_each(ids, lambda wid: action(client, wid))

    app_.doing = f"sending {verb} to {len(ids)} workflow(s): those it reached keep it; 'flowctl list' shows each"

    results = app_.run(act)
    failed = [r for r in results if not r["ok"]]
    out.info(f"{verb}: {len(results) - len(failed)} done, {len(failed)} failed")
    out.data(results, lambda o: out.table(results, ["workflow_id", "ok", "error"]))
    fail(overall(r["code"] for r in failed))


def dispatch(
    app_: App,
    verb: str,
    workflow_id: str | None,
    query: str | None,
    action: Callable[[Client, str], Awaitable[None]],
    *,
    done: dict[str, Any],
    said: str,
    dry_run: bool,
    yes: bool,
    limit: int,
    check: Callable[[list[Execution]], None] | None = None,
) -> None:
    """Run `action` on one workflow, or on every running one `query` selects."""
    if query is not None:
        run(app_, verb, query, action, dry_run=dry_run, yes=yes, limit=limit, check=check)
        return
    assert workflow_id is not None
    app_.doing = f"sending {verb} to {workflow_id}: it may have reached it or not ('flowctl describe' says)"
    app_.run(lambda client: action(client, workflow_id))
    app_.output.data({"workflow_id": workflow_id, **done}, lambda out: out.print(said, markup=False))
