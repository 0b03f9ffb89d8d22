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
