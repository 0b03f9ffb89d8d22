"""`flowctl start`: validate the input against the kind's model, start, optionally wait or follow."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowctl.cli.app import App, app, fail, state
from flowctl.cli.options import InputOpt, KindArg, SetOpt, TimeoutOpt

if TYPE_CHECKING:
    from temporalio.client import Client

    from flowctl.ops import Outcome

WORKFLOW_ID = re.compile(r"^[^\s/\\]{1,255}$")


class IfRunning(StrEnum):
    fail = "fail"
    attach = "attach"


EXAMPLES = """Examples:

  flowctl start order --set order_id=A-1 --set customer_id=c1 --set email=a@example.com --set 'items=[{"sku":"SKU-1","quantity":1,"unit_price":5}]' --wait

  flowctl start order -i @order.json --wait -o json

  cat order.json | flowctl start order -i - --if-running attach --follow"""


@app.command(epilog=EXAMPLES)
def start(
    ctx: typer.Context,
    kind: KindArg,
    input: InputOpt = None,  # noqa: A002 - the flag is --input
    set_: SetOpt = None,
    workflow_id: Annotated[
        str | None, typer.Option("--id", help="workflow id (default: the kind's id template)", show_default=False)
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the result; exit code reflects it")] = False,
    timeout: TimeoutOpt = None,
    follow: Annotated[bool, typer.Option("--follow", help="show each step as it happens, then the result")] = False,
    if_running: Annotated[
        IfRunning, typer.Option("--if-running", help="when the id is running: fail or attach")
    ] = IfRunning.fail,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="validate and show what would start; send nothing")
    ] = False,
) -> None:
    """Start a workflow of KIND with a validated input."""
    from flowctl import catalog, inputs, ops
    from flowctl.errors import UsageError

    app_ = state(ctx)
    spec = catalog.get(kind)
    payload = inputs.build_payload(
        spec.input_model, input, set_, what=f"{kind} input", hint=f"see 'flowctl kinds {kind}' for the schema"
    )
    wid = workflow_id if workflow_id is not None else spec.workflow_id(payload)
    if not WORKFLOW_ID.match(wid):
        raise UsageError(
            f"--id {wid!r} is not a valid workflow id", hint="use 1-255 characters without spaces or slashes"
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
        started = await ops.start(
            client, spec, payload, workflow_id=wid, task_queue=settings.task_queue, if_running=if_running.value
        )
        info = {
            "workflow_id": started.workflow_id,
            "run_id": started.run_id,
            "kind": kind,
            "attached": started.attached,
            "ui_url": ops.ui_url(app_.ui_base(), client.namespace, started.workflow_id, started.run_id),
        }
        if not (wait or follow):
            return info, None
        what = "attached to" if started.attached else "started"
        app_.output.info(f"{what} {started.workflow_id} (run {started.run_id})\n  {info['ui_url']}")
        if not await ops.has_worker(client, settings.task_queue):
            app_.output.warn(
                f"no worker polls task queue {settings.task_queue!r}: the workflow waits until one starts "
                "(flowctl worker)"
            )
        if follow:
            await follow_steps(app_, client, started.workflow_id)
        return info, await ops.wait_result(client, started.workflow_id, timeout=wait_for)

    info, outcome = app_.run(action)
    if outcome is None:
        app_.output.data(info, lambda out: _print_started(out, info))
        return
    info.update(outcome.as_dict())
    app_.output.data(info, lambda out: print_outcome(out, outcome))
    fail(outcome.code)


def _print_started(out: Any, info: dict[str, Any]) -> None:
    what = "attached to" if info["attached"] else "started"
    out.print(f"{what} [bold]{info['workflow_id']}[/bold] (run {info['run_id']})")
    out.print(f"  {info['ui_url']}", markup=False)


def print_outcome(out: Any, outcome: Outcome) -> None:
    from flowctl.output import to_json

    colour = {0: "green", 10: "yellow", 20: "cyan"}.get(int(outcome.code), "red")
    out.print(f"[{colour}]{outcome.status}[/{colour}] {outcome.workflow_id}")
    if outcome.error:
        out.print(f"  {outcome.error}", markup=False)
    if outcome.result is not None:
        out.print(to_json(outcome.result, indent=2), markup=False)


async def follow_steps(app_: App, client: Client, workflow_id: str) -> None:
    """Print each history event as it is recorded until the workflow closes."""
    from flowctl import ops
    from flowctl.history import Summarizer

    summarizer = Summarizer()
    async for event in ops.history_events(client, workflow_id, follow=True):
        item = summarizer.summary(event)
        if app_.output.format == "jsonl":
            app_.output.line({"workflow_id": workflow_id, **item})
        elif app_.output.format == "text":
            app_.output.err.print(f"  {item['time'][11:23]}  {item['type']:<34} {item['detail']}", markup=False)
