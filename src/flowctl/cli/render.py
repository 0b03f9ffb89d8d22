"""The text views of results, each a `Renderer` (`(Output, ...) -> None`): what a command
prints under `-o text`. JSON needs none of them: `Output.data` writes the data as it is."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowctl.ops.runs import Outcome
    from flowctl.output import Output
    from flowctl.watch import View

RESUMES = "resumes run {run}, which was stopped: the steps it had done are not done again"


def started(out: Output, info: dict[str, Any]) -> None:
    """A workflow started (or attached to) and where to see it."""
    from rich.markup import escape

    what = "attached to" if info["attached"] else "started"
    out.print(f"{what} [bold]{escape(info['workflow_id'])}[/bold] (run {info['run_id']})")
    out.print(f"  {info['ui_url']}", markup=False)
    if info.get("resumes"):
        out.print(f"  {RESUMES.format(run=info['resumes'])}", markup=False)
    if info.get("trace_id"):
        out.print(f"  trace {info['trace_id']}", markup=False)


def outcome(out: Output, ended: Outcome) -> None:
    """How a workflow ended (or that it still runs), coloured by its exit code, and its result."""
    from rich.markup import escape

    from flowctl.errors import ExitCode
    from flowctl.output import to_json

    colour = {ExitCode.OK: "green", ExitCode.BUSINESS_FAILURE: "yellow", ExitCode.STILL_RUNNING: "cyan"}.get(
        ended.code, "red"
    )
    out.print(f"[{colour}]{ended.status}[/{colour}] {escape(ended.workflow_id)}")
    if ended.error:
        out.print(f"  {ended.error}", markup=False)
    if ended.result is not None:
        out.print(to_json(ended.result, indent=2), markup=False)


def decision(out: Output, workflow_id: str, verdict: str, person: str, state: dict[str, Any]) -> None:
    """What was sent, then where the workflow stands: one vote of several decides nothing yet."""
    what = "approval" if verdict == "approve" else "rejection"
    out.print(f"{person}'s {what} sent to {workflow_id}; now:", markup=False)
    out.fields({k: v for k, v in state.items() if v not in (None, [], {})})


def settings(out: Output, data: dict[str, Any], prefix: str = "") -> None:
    """Nested settings as `a.b.c = value` lines, one per key."""
    from flowctl.output import text_value

    for key, value in data.items():
        if isinstance(value, dict) and value:
            settings(out, value, f"{prefix}{key}.")
        else:
            out.print(f"{prefix}{key} = {text_value(value)}", markup=False)


def server(out: Output, info: dict[str, Any]) -> None:
    """The embedded server: whether it runs and answers, where it listens and keeps its files."""
    state = "running" if info.get("running") else "stopped"
    if info.get("running") and not info.get("answering"):
        state = "running, not answering yet"
    out.print(f"server   {state}" + (f" (pid {info['pid']})" if info.get("pid") else ""), markup=False)
    for key in ("address", "ui_url", "db_file", "log_file"):
        out.print(f"{key:<8} {info[key]}", markup=False)


def ledger(out: Output, path: str, data: dict[str, list[dict[str, Any]]], tables: tuple[str, ...]) -> None:
    """The local services' ledger, table by table."""
    out.print(f"ledger {path}", markup=False)
    for table in tables:
        rows = data[table]
        out.print(f"\n[bold]{table}[/bold] ({len(rows)})")
        if rows:
            out.table(rows, [c for c in rows[0] if c not in ("at",)])


def kind(out: Output, described: dict[str, Any]) -> None:
    """A kind as `flowctl kinds KIND` shows it: its input, messages, example and failing inputs."""
    from flowctl.output import to_json

    out.print(f"[bold]{described['name']}[/bold] — {described['description']}")
    out.print(
        f"workflow type {described['workflow_type']}, task queue {described['task_queue']}, "
        f"id {described['id_template']}",
        markup=False,
    )
    schema = described["input_schema"]
    required = set(schema.get("required", []))
    out.print("\ninput fields:")
    for name, prop in schema.get("properties", {}).items():
        mark = "required" if name in required else f"default {to_json(prop.get('default'))}"
        out.print(f"  {name:<18} {mark:<26} {prop.get('description', '')}", markup=False)
    for group in ("signals", "queries", "updates"):
        messages = described[group]
        if not messages:
            out.print(f"{group}: none", markup=False)
        for m in messages:
            fields = ""
            if group != "queries" and m["schema"]:
                needed = set(m["schema"].get("required", []))
                names = (name if name in needed else f"[{name}]" for name in m["schema"].get("properties", {}))
                fields = " (" + ", ".join(names) + ")"
            out.print(
                f"{group[:-1] if group != 'queries' else 'query'}: {m['name']}{fields} — {m['description']}",
                markup=False,
            )
    out.print("\nexample input:")
    out.print(to_json(described["example"], indent=2), markup=False)
    failures = described.get("failure_inputs") or {}
    if failures:
        out.print("\ninputs that fail on purpose with the local services:")
        for what, how in failures.items():
            out.print(f"  {what}: {how}", markup=False)


def watch_view(view: View) -> Any:
    """The live view of `watch` at a terminal, redrawn as the workflow changes: a rich renderable."""
    from rich.console import Group
    from rich.text import Text

    from flowctl.output import printable as p
    from flowctl.watch import left_text

    lines = [Text.assemble((p(view.workflow_id), "bold"), f" ({view.kind or '…'})", f"  step: {p(view.step or '…')}")]
    lines += [Text(f"  ✓ {p(step)}", style="green") for step in view.completed]
    for action, state_ in view.compensations.items():
        lines.append(Text(f"  ↩ {p(action)} ({p(state_)})", style="yellow" if state_ == "done" else "red"))
    for activity, attempts in view.retries.values():
        lines.append(Text(f"  ↻ {p(activity)}: {attempts} attempts", style="magenta"))
    if view.waiting_for and view.outcome is None:
        left = left_text(view)
        waiting = f"  … waiting for {p(view.waiting_for)}" + (f" — {left} left" if left else "")
        waiting += f", then {p(view.at_deadline)}" if view.at_deadline else ""
        lines.append(Text(waiting, style="cyan"))
    if view.outcome is not None:
        done = view.outcome.get("outcome") or view.outcome["status"]
        good = view.outcome.get("succeeded", view.outcome["status"] == "completed")
        reason = f": {view.outcome['reason']}" if view.outcome.get("reason") else ""
        lines.append(Text(p(f"  ■ {done}{reason}"), style="bold green" if good else "bold red"))
    return Group(*lines)


def routes(out: Output, rows: list[dict[str, Any]]) -> None:
    """The `http` bridge's route table, each route with what its check found."""
    out.table(rows, ["command", "method", "url", "state"])
    for row in rows:
        if not row["ok"] and row.get("fix"):
            out.info(f"{row['command']}: fix {row['fix']}")


def counts(out: Output, total: int, by: str | None, groups: dict[str, int]) -> None:
    """`flowctl count`: the total alone, or a row per group and the total."""
    if by is None:
        out.print(str(total), markup=False)
        return
    out.table([{by: name, "count": n} for name, n in groups.items()], [by, "count"])
    out.print(f"total {total}", markup=False)


RETRIED = "retried {workflow_id}: run {run_id} takes over from run {resumes} ({was}); steps already done are answered as they were"


def reset(out: Output, info: dict[str, Any]) -> None:
    """`flowctl reset`: where it went back to, what is kept and what is taken again (or would be)."""
    done = "would reset" if info.get("dry_run") else "reset"
    new = f" → run {info['new_run_id']}" if info.get("new_run_id") else ""
    out.print(
        f"{done} {info['workflow_id']} (run {info['run_id']}{new}) to {info['to']} (event {info['event_id']})",
        markup=False,
    )
    out.print(f"  kept:        {', '.join(info['kept']) or 'no step'}", markup=False)
    again = ", ".join(f"{step} (in flight)" if step in info["in_flight"] else step for step in info["taken_again"])
    out.print(f"  taken again: {again or 'no step'}; each answered as it was, none done twice", markup=False)


NEXT_SHOWN = 5  # next runs a schedule's text view lists


def spec_text(spec: dict[str, Any]) -> str:
    """When a schedule acts, in a few words: `every 1d/9h; cron 0 9 * * 1-5 (mornings) in Europe/Berlin`."""
    parts = [f"every {every}" for every in spec["every"]]
    for expression in spec["cron"]:
        times, _, comment = expression.partition(" # ")
        parts.append(f"cron {times}" + (f" ({comment})" if comment else ""))
    zone = f" in {spec['time_zone']}" if spec.get("time_zone") else ""
    return ("; ".join(parts) or "only when triggered") + zone


def _when(moment: str | None) -> str:
    """An ISO time as the schedule views show it: UTC as Z."""
    return (moment or "-").replace("+00:00", "Z")


def _runs_table(out: Output, runs: list[dict[str, Any]]) -> None:
    rows = [{**run, "scheduled_at": _when(run["scheduled_at"])} for run in runs]
    out.table(rows, ["scheduled_at", "workflow_id", "status", "flow_status"])


def schedule(out: Output, info: dict[str, Any], *, created: bool = False) -> None:
    """A schedule in full: what it starts, when, its policy and state, its next and recent runs."""
    from flowctl.output import printable, text_value, to_json

    policy = info["policy"]
    kind = info["kind"] or f"{info['workflow_type']}, not a flowctl kind"
    state = f"paused: {info['note']}" if info["paused"] else "active" + (f" ({info['note']})" if info["note"] else "")
    counts = f"{info['runs_started']} started, {info['skipped_overlap']} skipped as overlapping, "
    counts += f"{info['missed_catchup_window']} missed the catchup window"
    counts += f", {info['buffered']} buffered" if info["buffered"] else ""
    lines = {
        "schedule": f"{info['schedule_id']} ({kind})",
        "starts": f"{info['workflow_type']} as {info['workflow_id']}-<scheduled time> on task queue {info['task_queue']}",
        "when": spec_text(info["spec"]),
        "policy": f"overlap {policy['overlap']}, catchup window {text_value(policy['catchup_window'])}, "
        f"pause on failure: {'yes' if policy['pause_on_failure'] else 'no'}",
        "state": state,
        "runs": counts,
        "running": ", ".join(info["running"]) or None,
        "ui": info.get("ui_url"),
        "input": to_json(info["input"]) if info["input"] is not None else info.get("input_error", "-"),
    }
    if created:
        out.print(f"created schedule {printable(info['schedule_id'])}", markup=False)
    for key, value in lines.items():
        if value is not None:
            out.print(f"{key:<9} {printable(value)}", markup=False)
    upcoming = info["next_runs"]
    more = f" (the first {NEXT_SHOWN} of {len(upcoming)}; -o json lists all)" if len(upcoming) > NEXT_SHOWN else ""
    out.print(f"next runs{more}:" if upcoming else "next runs: none", markup=False)
    if upcoming:
        out.table([{**r, "at": _when(r["at"])} for r in upcoming[:NEXT_SHOWN]], ["at", "workflow_id"])
    out.print("recent runs (newest first):" if info["recent_runs"] else "recent runs: none", markup=False)
    if info["recent_runs"]:
        _runs_table(out, info["recent_runs"])


def schedules(out: Output, rows: list[dict[str, Any]]) -> None:
    """`schedule list`: one line per schedule with its next run and its last run's status."""
    if not rows:
        out.print("no schedules", markup=False)
        return
    shown = []
    for row in rows:
        last = row["recent_runs"][0] if row["recent_runs"] else {}
        status = "/".join(dict.fromkeys(s for s in (last.get("status"), last.get("flow_status")) if s))
        shown.append(
            {
                "schedule_id": row["schedule_id"],
                "kind": row["kind"] or row["workflow_type"],
                "spec": spec_text(row["spec"]),
                "state": "paused" if row["paused"] else "active",
                "next_run": _when(row["next_runs"][0]["at"]) if row["next_runs"] else None,
                "last_run": last.get("workflow_id"),
                "last_status": status or None,
            }
        )
    out.table(shown, ["schedule_id", "kind", "spec", "state", "next_run", "last_run", "last_status"])


def triggered(out: Output, info: dict[str, Any]) -> None:
    """What became of a triggered run."""
    sid, outcome = info["schedule_id"], info["outcome"]
    running = ", ".join(info.get("running") or []) or "one"
    said = {
        "started": f"triggered schedule {sid}: started {info.get('workflow_id')} (run {info.get('run_id')})",
        "buffered": f"triggered schedule {sid}: the run waits for {running} to end (overlap policy)",
        "skipped": f"triggered schedule {sid}: skipped, {running} still runs (--overlap allow-all runs beside it)",
        "unknown": f"triggered schedule {sid}: no run seen yet ('flowctl schedule describe {sid}' shows it)",
    }[outcome]
    out.print(said, markup=False)


def backfilled(out: Output, info: dict[str, Any]) -> None:
    """A backfill: the scheduled times it took and the workflow ids of their runs."""
    runs = info["runs"]
    span = f"from {_when(info['from'])} to {_when(info['to'])}"
    if not runs:
        out.print(f"no scheduled time of {info['schedule_id']} falls {span}: nothing to backfill", markup=False)
        return
    out.print(f"backfill of {info['schedule_id']} {span}: {len(runs)} run(s), overlap {info['overlap']}", markup=False)
    out.table([{**r, "scheduled_at": _when(r["scheduled_at"])} for r in runs], ["scheduled_at", "workflow_id"])
