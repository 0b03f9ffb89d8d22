"""`flowctl schedule create|list|describe|pause|unpause|trigger|backfill|delete`: a kind's
workflows on a Temporal schedule, with the input checked as `flowctl start` checks it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowctl.cli import render
from flowctl.cli.app import RUN, App, app, fail, finishing, require_subcommand, state
from flowctl.cli.options import WORKFLOW_ID, InputOpt, KindArg, SetOpt, complete_kind
from flowctl.errors import UsageError

if TYPE_CHECKING:
    from temporalio.client import Client

    from flowctl.ops.schedule_views import Described, Listed
    from flowctl.output import Output

schedule_app = typer.Typer(
    help="Start a kind's workflows on a schedule: every interval, or at cron times.",
    epilog="Example: flowctl schedule create order nightly-A1 -i @order.json --every 1d/2h && flowctl schedule list",
    invoke_without_command=True,
)
schedule_app.callback()(require_subcommand)
app.add_typer(schedule_app, name="schedule", rich_help_panel=RUN)


def _not_empty(value: str) -> str:
    if not value:
        raise typer.BadParameter("give a schedule id ('flowctl schedule list' shows them)")
    return value


ScheduleIdArg = Annotated[str, typer.Argument(help="schedule id", show_default=False, callback=_not_empty)]
NoteOpt = Annotated[
    str | None, typer.Option("--note", help="a note kept with the schedule's state", show_default=False)
]
OverlapOpt = Annotated[
    str | None,
    typer.Option(
        "--overlap",
        metavar="POLICY",
        help="when a run is due while one still runs: skip, buffer-one, buffer-all, cancel-other, "
        "terminate-other or allow-all",
        show_default=False,
    ),
]
RUN_TIME_NOTE = (
    "Each run's workflow id is the kind's id (or --id), a dash and the run's scheduled time, "
    "order-A1-2026-12-02T09:00:00Z: flowctl list --kind order finds it."
)


def checked_id(schedule_id: str) -> str:
    if not WORKFLOW_ID.fullmatch(schedule_id) or schedule_id.startswith("-"):
        raise UsageError(
            f"schedule id {schedule_id!r} is not one flowctl creates",
            hint="use 1-255 characters without spaces, control characters or slashes, not starting with '-'",
        )
    return schedule_id


@schedule_app.command(
    epilog="Examples: flowctl schedule create order nightly-A1 -i @order.json --every 1d/2h --note 'restock';  "
    "flowctl schedule create approval weekly-report -i @approval.json --cron '0 9 * * MON' "
    "--time-zone Europe/Berlin --overlap buffer-one --paused\n\n" + RUN_TIME_NOTE,
)
def create(
    ctx: typer.Context,
    kind: KindArg,
    schedule_id: ScheduleIdArg,
    input: InputOpt = None,  # noqa: A002 - the flag is --input
    set_: SetOpt = None,
    workflow_id: Annotated[
        str | None,
        typer.Option("--id", help="the runs' workflow id, before their time (default: the kind's id template)"),
    ] = None,
    every: Annotated[
        list[str] | None,
        typer.Option("--every", metavar="DURATION[/OFFSET]", help="run every interval (1h; 1d/9h: daily at 09:00 UTC)"),
    ] = None,
    cron_: Annotated[
        list[str] | None,
        typer.Option("--cron", metavar="EXPR", help="run at cron times ('0 9 * * MON-FRI'); repeatable"),
    ] = None,
    zone: Annotated[
        str | None, typer.Option("--time-zone", metavar="ZONE", help="the cron times' zone (default UTC)")
    ] = None,
    overlap: OverlapOpt = None,
    catchup_window: Annotated[
        str | None,
        typer.Option(
            "--catchup-window", metavar="DURATION", help="how late a run missed in an outage still starts (default 1y)"
        ),
    ] = None,
    pause_on_failure: Annotated[bool, typer.Option("--pause-on-failure", help="pause when a run fails")] = False,
    paused: Annotated[bool, typer.Option("--paused", help="create it paused")] = False,
    note: NoteOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="check everything and show the schedule; send nothing")
    ] = False,
) -> None:
    """Create a schedule that starts KIND with one checked input (-i, --set as for start), at --every or --cron times."""
    from datetime import UTC, datetime

    from flowctl import catalog, inputs
    from flowctl.ops import schedule_views, schedules

    app_ = state(ctx)
    spec = catalog.get(kind)
    checked_id(schedule_id)
    when = schedules.spec(every or [], cron_ or [], zone)
    policy = schedules.overlap(overlap) if overlap is not None else "skip"
    catchup = inputs.parse_duration(catchup_window, field="--catchup-window") if catchup_window else None
    if catchup is not None and catchup < schedules.MIN_CATCHUP:
        raise UsageError(f"--catchup-window {catchup_window!r} is shorter than Temporal takes", hint="give 10s or more")
    payload = inputs.build_payload(
        spec.input_model, input, set_, what=f"{kind} input", hint=f"see 'flowctl kinds {kind}' for the schema"
    )
    wid = workflow_id if workflow_id is not None else spec.workflow_id(payload)
    if not WORKFLOW_ID.fullmatch(schedules.run_id_of(wid, datetime.now(UTC))):  # what each run is called
        raise UsageError(
            f"--id {wid!r} is not a valid workflow id for a schedule's runs",
            hint="use at most 234 characters (each run adds its time) without spaces, control characters or slashes",
        )
    plan = schedules.Plan(
        schedule_id=schedule_id,
        kind=spec,
        payload=payload,
        workflow_id=wid,
        task_queue=app_.settings().task_queue,
        spec=when,
        overlap=policy,
        catchup_window=catchup,
        pause_on_failure=pause_on_failure,
        paused=paused,
        note=note,
    )
    if dry_run:
        planned = plan.as_dict() | {"dry_run": True}
        app_.output.data(planned)
        return

    async def action(client: Client) -> dict[str, Any]:
        from flowctl.errors import FlowctlError

        await schedules.create(client, plan)
        app_.doing = f"reading schedule {schedule_id}, which was created"
        try:
            return described(app_, client, await schedule_views.describe(client, schedule_id))
        except FlowctlError as exc:  # it was created: that is what the exit code says
            app_.output.warn(f"created schedule {schedule_id}, but could not read it back: {exc}")
            return plan.as_dict() | {"next_runs": None}

    app_.doing = (
        f"creating schedule {schedule_id}: it may be there or not ('flowctl schedule describe {schedule_id}' says)"
    )
    info = app_.run(action)
    finishing()
    if info["next_runs"] == []:
        app_.output.warn(
            f"schedule {schedule_id} matches no time from now on: it only runs when triggered or backfilled"
        )

    def text(out: Output) -> None:
        if info["next_runs"] is None:  # created, not read back
            out.print(f"created schedule {schedule_id}", markup=False)
        else:
            render.schedule(out, info, created=True)

    app_.output.data(info, text)


def described(app_: App, client: Client, view: Described) -> dict[str, Any]:
    """The document `describe` (and `create`) print: the schedule and its Web UI link."""
    from flowctl.ops import schedules

    return view.as_dict() | {"ui_url": schedules.ui_url(app_.ui_base(), client.namespace, view.schedule_id)}


@schedule_app.command(
    epilog="Examples: flowctl schedule describe nightly-A1;  flowctl schedule describe nightly-A1 -o json | jq .next_runs"
)
def describe(ctx: typer.Context, schedule_id: ScheduleIdArg) -> None:
    """Show a schedule: what it starts with which input, when, its policy, next runs and recent runs with their status."""
    from flowctl.ops import schedule_views

    app_ = state(ctx)

    async def action(client: Client) -> dict[str, Any]:
        return described(app_, client, await schedule_views.describe(client, schedule_id))

    info = app_.run(action)
    app_.output.data(info, lambda out: render.schedule(out, info))


@schedule_app.command(
    name="list", epilog="Examples: flowctl schedule list;  flowctl schedule list --kind order -o jsonl"
)
def list_(
    ctx: typer.Context,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="only the schedules flowctl made for this kind", autocompletion=complete_kind),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, max=10_000, help="at most this many")] = 100,
) -> None:
    """List schedules: kind, spec, state, next run and last run with its status."""
    from flowctl import catalog
    from flowctl.ops import schedule_views

    if kind is not None:
        catalog.get(kind)
    app_ = state(ctx)

    async def action(client: Client) -> tuple[list[Listed], bool]:
        return await schedule_views.list_schedules(client, kind, limit)

    found, more = app_.run(action)
    if more:
        app_.output.warn(f"{limit} schedules shown, more were left out: raise --limit to see them")
    rows = [view.as_dict() for view in found]
    app_.output.data(rows, lambda out: render.schedules(out, rows))


@schedule_app.command(epilog="Example: flowctl schedule pause nightly-A1 --note 'warehouse closed until Monday'")
def pause(ctx: typer.Context, schedule_id: ScheduleIdArg, note: NoteOpt = None) -> None:
    """Pause a schedule: no run starts on its own until it is unpaused (trigger and backfill still do)."""
    toggle(ctx, schedule_id, note, paused=True)


@schedule_app.command(epilog="Example: flowctl schedule unpause nightly-A1 --note 'warehouse open again'")
def unpause(ctx: typer.Context, schedule_id: ScheduleIdArg, note: NoteOpt = None) -> None:
    """Unpause a schedule: its next runs start on time again (runs missed meanwhile within the catchup window)."""
    toggle(ctx, schedule_id, note, paused=False)


def toggle(ctx: typer.Context, schedule_id: str, note: str | None, *, paused: bool) -> None:
    from flowctl.ops import schedules

    app_ = state(ctx)
    verb, doing = ("paused", "pausing") if paused else ("unpaused", "unpausing")
    said = note or (schedules.PAUSED_NOTE if paused else schedules.UNPAUSED_NOTE)
    app_.doing = f"{doing} schedule {schedule_id}: it may be {verb} or not ('flowctl schedule describe' says)"
    app_.run(lambda client: (schedules.pause if paused else schedules.unpause)(client, schedule_id, note))
    finishing()
    info = {"schedule_id": schedule_id, "paused": paused, "note": said}
    app_.output.data(info, lambda out: out.print(f"{verb} schedule {schedule_id} ({said})", markup=False))


@schedule_app.command(
    epilog="Examples: flowctl schedule trigger nightly-A1;  flowctl schedule trigger nightly-A1 --overlap allow-all -o json\n\n"
    "Exit codes: 0 a run started (or was buffered behind the running one); 4 the overlap policy skipped it; 3 no such schedule."
)
def trigger(ctx: typer.Context, schedule_id: ScheduleIdArg, overlap: OverlapOpt = None) -> None:
    """Start a run now, paused or not, and say which workflow it is (or that the overlap policy held it back)."""
    from flowctl.errors import ExitCode
    from flowctl.ops import schedules

    policy = schedules.overlap(overlap) if overlap is not None else None
    app_ = state(ctx)
    app_.doing = f"triggering schedule {schedule_id}: a run may have started ('flowctl schedule describe' says)"
    info = app_.run(lambda client: schedules.trigger(client, schedule_id, policy))
    finishing()
    app_.output.data(info, lambda out: render.triggered(out, info))
    fail(ExitCode.CONFLICT if info["outcome"] == "skipped" else ExitCode.OK)


@schedule_app.command(
    epilog="Example: flowctl schedule backfill nightly-A1 --from 2026-11-01 --to 2026-11-07T23:59:59Z --overlap buffer-all\n\n"
    "Times are ISO 8601 (UTC without an offset), a date (its midnight) or now. The overlap policy is the "
    "schedule's unless --overlap says otherwise: with skip, a run due while another runs is skipped."
)
def backfill(
    ctx: typer.Context,
    schedule_id: ScheduleIdArg,
    start: Annotated[
        str, typer.Option("--from", metavar="TIME", help="the first time to take (included)", show_default=False)
    ],
    end: Annotated[
        str, typer.Option("--to", metavar="TIME", help="the last time to take (included)", show_default=False)
    ],
    overlap: OverlapOpt = None,
) -> None:
    """Start now the runs a schedule would have started between two times (at most 999), one per scheduled time."""
    from flowctl import inputs
    from flowctl.ops import schedules

    begin, until = inputs.parse_time(start, field="--from"), inputs.parse_time(end, field="--to")
    if begin >= until:
        raise UsageError(f"--from {start!r} is not before --to {end!r}", hint="give the earlier time to --from")
    policy = schedules.overlap(overlap) if overlap is not None else None
    app_ = state(ctx)
    app_.doing = f"backfilling schedule {schedule_id}: its runs may have been asked for or not ('flowctl schedule describe' says)"
    info = app_.run(lambda client: schedules.backfill(client, schedule_id, begin, until, policy))
    finishing()
    if info["overlap"] == "skip" and len(info["runs"]) > 1:
        app_.output.warn(
            "overlap policy skip: a run due while another runs is skipped (--overlap buffer-all runs each in turn)"
        )
    app_.output.data(info, lambda out: render.backfilled(out, info))


@schedule_app.command(epilog="Examples: flowctl schedule delete nightly-A1;  flowctl schedule delete nightly-A1 --yes")
def delete(
    ctx: typer.Context,
    schedule_id: ScheduleIdArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask (required without a terminal)")] = False,
) -> None:
    """Delete a schedule; the runs it started go on. Asks first at a terminal, else needs --yes."""
    from flowctl.errors import InterruptedByUser
    from flowctl.ops import schedule_views, schedules

    app_ = state(ctx)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"refusing to delete schedule {schedule_id!r} without --yes",
                hint="check it with 'flowctl schedule describe' first",
            )
        view = app_.run(lambda client: schedule_views.describe(client, schedule_id))
        app_.output.info(
            f"  {schedule_id}  ({view.kind or view.workflow_type}, {render.spec_text(view.spec)}, {view.runs_started} run(s) so far)"
        )
        if not typer.confirm(f"delete schedule {schedule_id}?", err=True):
            raise InterruptedByUser(
                f"not confirmed: nothing deleted (schedule {schedule_id} left as it was)", terminated=False
            )
    app_.doing = f"deleting schedule {schedule_id}: it may be deleted or not ('flowctl schedule describe' says)"
    app_.run(lambda client: schedules.delete(client, schedule_id))
    finishing()
    info = {"schedule_id": schedule_id, "deleted": True}
    app_.output.data(
        info,
        lambda out: out.print(f"deleted schedule {schedule_id}; the runs it started are not affected", markup=False),
    )
