"""`flowctl start`: validate the input against the kind's model, start, optionally wait or follow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowctl.cli import render
from flowctl.cli.app import RUN, App, app, fail, finishing, state
from flowctl.cli.options import WORKFLOW_ID, InputOpt, KindArg, SetOpt, TimeoutOpt, wait_timeout

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.service import ServiceClient

    from flowctl.inputs import BulkLine
    from flowctl.ops.runs import Outcome
    from flowctl_workflows.kinds import Kind

BULK_CONCURRENCY = 50  # starts in flight: measured in bench/bulk.py


class IfRunning(StrEnum):
    fail = "fail"
    attach = "attach"


EXAMPLES = """Examples:

  flowctl start order --set order_id=A-1 --set customer_id=c1 --set email=a@example.com --set 'items=[{"sku":"SKU-1","quantity":1,"unit_price":5}]' --wait

  flowctl start order -i @order.json --wait -o json

  cat order.json | flowctl start order -i - --if-running attach --follow

  flowctl start order --from orders.jsonl --concurrency 50 --rate 100 > started.jsonl

  flowctl start order --from orders.jsonl --wait --timeout 30m > ended.jsonl"""


@app.command(rich_help_panel=RUN, epilog=EXAMPLES)
def start(
    ctx: typer.Context,
    kind: KindArg,
    input: InputOpt = None,  # noqa: A002 - the flag is --input
    set_: SetOpt = None,
    workflow_id: Annotated[
        str | None, typer.Option("--id", help="workflow id (default: the kind's id template)", show_default=False)
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="wait for the result; exit code reflects it (with --from: for each, as flowctl wait)"
        ),
    ] = False,
    timeout: TimeoutOpt = None,
    follow: Annotated[bool, typer.Option("--follow", help="show each step as it happens, then the result")] = False,
    if_running: Annotated[
        IfRunning, typer.Option("--if-running", help="when the id is running: fail or attach")
    ] = IfRunning.fail,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="validate and show what would start; send nothing")
    ] = False,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from", metavar="FILE", help="bulk: a JSONL file (or -), one input per line", show_default=False
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", metavar="N", min=1, max=500, help="bulk: starts in flight (default 50)"),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            metavar="PER_SECOND",
            min=0.1,
            help="bulk: at most this many starts per second",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start a workflow of KIND with a validated input, or one per line of a JSONL file (--from)."""
    from flowctl import catalog, inputs
    from flowctl.errors import UsageError
    from flowctl.ops import runs

    app_ = state(ctx)
    spec = catalog.get(kind)
    if from_ is not None:
        single = {"-i": input, "--set": set_, "--id": workflow_id, "--follow": follow or None}
        clash = [flag for flag, value in single.items() if value]
        if clash:
            raise UsageError(f"--from starts one workflow per line; it does not take {', '.join(clash)}")
        wait_for = wait_timeout(timeout, wait)
        lines = inputs.without_duplicates(inputs.read_bulk(from_, spec.input_model), spec.workflow_id)
        waiting = Waiting(wait_for) if wait else None
        start_from_file(app_, spec, lines, concurrency or BULK_CONCURRENCY, rate, dry_run, waiting)
        return
    bulk_only = [flag for flag, value in (("--concurrency", concurrency), ("--rate", rate)) if value is not None]
    if bulk_only:
        raise UsageError(f"{' and '.join(bulk_only)} shape a bulk start: they need --from FILE", hint="or drop them")
    payload = inputs.build_payload(
        spec.input_model, input, set_, what=f"{kind} input", hint=f"see 'flowctl kinds {kind}' for the schema"
    )
    wid = workflow_id if workflow_id is not None else spec.workflow_id(payload)
    if not WORKFLOW_ID.fullmatch(wid):
        raise UsageError(
            f"--id {wid!r} is not a valid workflow id",
            hint="use 1-255 characters without spaces, control characters or slashes",
        )
    wait_for = inputs.parse_duration(timeout, field="--timeout") if timeout else None
    settings = app_.settings()
    if dry_run:
        app_.output.data(
            {
                "workflow_id": wid,
                "kind": kind,
                "workflow_type": spec.workflow_type,
                "task_queue": settings.task_queue,
                "input": payload.model_dump(mode="json"),
                "dry_run": True,
            }
        )
        return

    async def action(client: Client) -> tuple[dict[str, Any], Outcome | None]:
        from flowctl import tracing

        # With tracing on, the trace begins here: the workflow, its activities and the services' calls continue it.
        with tracing.span(settings, f"flowctl start {kind}", workflow_id=wid) as trace_id:
            started = await runs.start(
                client, spec, payload, workflow_id=wid, task_queue=settings.task_queue, if_running=if_running.value
            )
        app_.doing = f"waiting for {wid}, which was started and goes on"
        info = {
            "workflow_id": started.workflow_id,
            "run_id": started.run_id,
            "kind": kind,
            "attached": started.attached,
            "ui_url": runs.ui_url(app_.ui_base(), client.namespace, started.workflow_id, started.run_id),
        }
        if started.resumes:
            info["resumes"] = started.resumes
        if trace_id is not None:
            info["trace_id"] = trace_id
        if not (wait or follow):
            return info, None
        what = "attached to" if started.attached else "started"
        app_.output.info(f"{what} {started.workflow_id} (run {started.run_id})\n  {info['ui_url']}")
        if started.resumes:
            app_.output.info(f"  {render.RESUMES.format(run=started.resumes)}")
        if not await runs.has_worker(client, settings.task_queue):
            app_.output.warn(
                f"no worker polls task queue {settings.task_queue!r}: the workflow waits until one starts "
                "(flowctl worker)"
            )
        if follow:
            from flowctl.cli.watch import follow as follow_live

            await follow_live(app_, client, started.workflow_id)
        return info, await runs.wait_result(client, started.workflow_id, timeout=wait_for, patience=app_.patience())

    app_.doing = f"starting {wid}: it may have started or not ('flowctl describe {wid}' says)"
    info, outcome = app_.run(action)
    if outcome is None:
        finishing()  # it started: a Ctrl-C now would only cut the line that says so
        app_.output.data(info, lambda out: render.started(out, info))
        return
    info.update(outcome.as_dict())
    app_.output.data(info, lambda out: render.outcome(out, outcome))
    fail(outcome.code)


@dataclass(frozen=True)
class Waiting:
    """`start --from ... --wait`: each started workflow is waited for as soon as it starts."""

    timeout: timedelta | None  # one deadline for them all, from when starting begins


def start_from_file(
    app_: App,
    spec: Kind,
    lines: list[BulkLine],
    concurrency: int,
    rate: float | None,
    dry_run: bool,
    waiting: Waiting | None = None,
) -> None:
    """Start every valid line; one JSON line per input line on stdout, progress on stderr.
    With `waiting`, a started line's JSON line is printed when its workflow ends, as
    `flowctl wait` prints it, and the exit code is `wait`'s; stopped, the lines of those still
    running are printed then (`"waited": false`)."""
    import asyncio
    import sys
    import time

    from flowctl.connect import data_converter
    from flowctl.errors import ExitCode, overall, worst
    from flowctl.ops import bulk, runs

    out = app_.output
    if dry_run or all(item.payload is None for item in lines):  # nothing valid: nothing is sent either
        for item in lines:
            if item.payload is None:
                out.line({"line": item.line, "error": item.error, "code": int(ExitCode.USAGE)})
            else:
                out.line({"line": item.line, "workflow_id": spec.workflow_id(item.payload), "dry_run": True})
        fail(ExitCode.USAGE if any(item.payload is None for item in lines) else ExitCode.OK)
        return
    settings = app_.settings()
    progress = None
    if sys.stderr.isatty():
        from rich.progress import Progress

        # rich would send stdout's lines to the bar's console (stderr) so they print above it;
        # that is only right when both are the same terminal, not when stdout is a file.
        progress = Progress(console=out.err, transient=False, redirect_stdout=sys.stdout.isatty())
        task = progress.add_task(f"starting {spec.name} workflows", total=len(lines))

    waiters: bulk.Waiters | None = None

    def said_started(outcomes: list[dict[str, Any]], elapsed: float) -> None:
        started = sum(1 for o in outcomes if "run_id" in o and not o.get("already_started"))
        already = sum(1 for o in outcomes if o.get("already_started"))
        resumed = sum(1 for o in outcomes if o.get("resumes"))
        pace = f" ({(started + already) / elapsed:.0f} per second)" if elapsed > 0 and started + already else ""
        out.info(
            f"{started} started{f' ({resumed} resuming a stopped run)' if resumed else ''}, {already} already"
            f" started, {len(outcomes) - started - already} failed in {elapsed:.2f}s{pace}"
        )

    def report(outcome: dict[str, Any]) -> None:
        if waiters is not None and "run_id" in outcome:
            waiters.add(outcome["workflow_id"], outcome)  # its line is printed when it ends
        else:
            out.line(outcome)
        if progress is not None:
            progress.advance(task)

    elapsed = 0.0
    ended: list[dict[str, Any]] = []
    target = app_.target()

    async def action(service: ServiceClient) -> list[dict[str, Any]]:
        nonlocal elapsed, waiters, ended
        converter = data_converter(target.keys)
        if waiting is not None:
            from temporalio.client import Client

            client = Client(service, namespace=target.namespace, data_converter=converter)
            waiters = bulk.Waiters(client, timeout=waiting.timeout, patience=app_.patience(), report=out.line)
            if not await runs.has_worker(client, settings.task_queue):
                out.warn(f"no worker polls task queue {settings.task_queue!r}: the workflows wait until one starts")
        began = time.perf_counter()
        try:
            return await starting(service, converter, began)
        except asyncio.CancelledError:  # stopped: each workflow started and not yet ended still gets its line
            for about in waiters.pending() if waiters is not None else []:
                out.line({**about, "status": "running", "waited": False})
            raise

    async def starting(service: ServiceClient, converter: Any, began: float) -> list[dict[str, Any]]:
        nonlocal elapsed, ended
        try:
            outcomes = await bulk.bulk_start(
                service,
                target.namespace,
                converter,
                spec,
                lines,
                task_queue=settings.task_queue,
                concurrency=concurrency,
                rate=rate,
                report=report,
            )
        finally:
            elapsed = time.perf_counter() - began
        if waiters is not None:
            if progress is not None:
                progress.stop()
            said_started(outcomes, elapsed)
            app_.doing = "waiting for the workflows it started: each goes on; a line each says which ended"
            ended = await waiters.ended()
            out.say(f"{bulk.summary(ended)} in {time.perf_counter() - began:.1f}s")
        return outcomes

    app_.doing = (
        "starting workflows: every line printed with a run_id started; the others may or may not have"
        if waiting is not None
        else "starting workflows: every line printed so far started; the others may or may not have"
    )
    if progress is not None:
        progress.start()
    try:
        outcomes = app_.run_service(action)
    finally:
        if progress is not None:
            progress.stop()
    codes = {o["code"] for o in outcomes if "code" in o}
    if waiting is not None:
        fail(worst([*codes, *(line["code"] for line in ended)]))
    said_started(outcomes, elapsed)
    fail(overall(codes))
