"""`flowctl demo`: the README's main job, end to end, on the embedded server if nothing answers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import typer

from flowctl.cli.app import RUN, App, app, fail, state

if TYPE_CHECKING:
    from temporalio.client import Client

    from flowctl.config import Settings
    from flowctl.connect import Target

WORKER_READY_TIMEOUT = 60.0


@app.command(rich_help_panel=RUN, epilog="Example: flowctl demo   (what 'make demo' runs)")
def demo(ctx: typer.Context) -> None:
    """Run three orders: one succeeds, one is declined and compensated, one is held for review and released."""
    import asyncio  # here, not at the top: `--help` loads this module

    from flowctl import devserver
    from flowctl.errors import ExitCode, UnreachableError
    from flowctl.ops import runs

    app_ = state(ctx)
    settings = app_.settings()
    target = app_.target()
    out = app_.output
    started_server = False
    worker: subprocess.Popen[bytes] | None = None
    try:
        try:
            asyncio.run(_check_server(target, quiet=not app_.debug))
        except UnreachableError:
            out.info(f"no Temporal server at {target.address}: starting the embedded one")
            # Only a server this demo started is stopped by it: one already running is the user's.
            started_server = bool(devserver.start(settings)["started"])
        if not app_.run(lambda client: runs.has_worker(client, settings.task_queue)):
            out.info(f"no worker on task queue {settings.task_queue!r}: starting one")
            worker = _start_worker(app_)
        results = app_.run(lambda client: _run_orders(app_, client, settings))
    finally:
        if worker is not None:
            _stop_worker(worker)
        if started_server:
            devserver.stop(settings)
            out.info("stopped the embedded server this demo started")
    ok = all(r["outcome"] == r["expected"] for r in results)
    out.data({"orders": results, "ok": ok}, lambda o: o.print("\n[bold]demo ok[/bold]" if ok else "\ndemo FAILED"))
    fail(ExitCode.OK if ok else ExitCode.INTERNAL)  # the demo runs what flowctl promises: a miss is a bug


async def _check_server(target: Target, *, quiet: bool) -> None:
    """Raise `UnreachableError` if nothing answers, `NotFoundError` if it lacks our attributes."""
    from flowctl import searchattrs
    from flowctl.connect import connect, quiet_runtime

    await searchattrs.require(await connect(target, runtime=quiet_runtime() if quiet else None))


def _global_args(app_: App) -> list[str]:
    args: list[str] = []
    for flag, value in (
        ("--config", app_.config_file),
        ("--profile", app_.profile),
        ("--address", app_.address),
        ("--namespace", app_.namespace),
    ):
        if value is not None:
            args += [flag, str(value)]
    return args


def _start_worker(app_: App) -> subprocess.Popen[bytes]:
    """A `flowctl worker` child process, returned once it says it is ready."""
    from flowctl.config import state_dir
    from flowctl.errors import FlowctlError

    log_path = state_dir() / "demo-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - this very program
            [sys.executable, "-m", "flowctl", *_global_args(app_), "worker"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    deadline = time.monotonic() + WORKER_READY_TIMEOUT
    while time.monotonic() < deadline:
        if b"worker ready" in log_path.read_bytes():
            return process
        if process.poll() is not None:
            break
        time.sleep(0.1)
    _stop_worker(process)
    raise FlowctlError(f"the demo's worker did not start; see {log_path}")


def _stop_worker(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _orders(settings: Settings) -> list[tuple[str, str, dict[str, Any]]]:
    from flowctl_workflows.services import DECLINED_CARD

    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    big = round(max(settings.services.local.fraud_review_threshold * 1.5, 1500.0), 2)

    def order(suffix: str, card: str, price: float) -> dict[str, Any]:
        return {
            "order_id": f"demo-{stamp}-{suffix}",
            "customer_id": "cust-demo",
            "email": "demo@example.com",
            "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": price}],
            "card": card,
        }

    return [
        ("a successful order", "completed", order("ok", "tok_visa", 12.5)),
        ("a declined payment, compensated", "compensated", order("declined", DECLINED_CARD, 12.5)),
        ("a large order held for fraud review, released by a signal", "completed", order("review", "tok_visa", big)),
    ]


async def _run_orders(app_: App, client: Client, settings: Settings) -> list[dict[str, Any]]:
    from flowctl import catalog, watch
    from flowctl.ops import messages, runs
    from flowctl_workflows.models import Decision

    kind = catalog.get("order")
    out = app_.output
    results = []
    for number, (title, expected, data) in enumerate(_orders(settings), start=1):
        payload = kind.input_model.model_validate(data)
        workflow_id = kind.workflow_id(payload)
        out.info(f"\n{number}. {title}: {workflow_id}")
        await runs.start(client, kind, payload, workflow_id=workflow_id, task_queue=settings.task_queue)
        out.info(f"   {runs.ui_url(app_.ui_base(), client.namespace, workflow_id)}")
        async for _view, change in watch.changes(client, workflow_id):
            if change["change"] in ("step", "compensation"):
                out.info(f"   {watch.describe_change(change)}")
            elif change["change"] == "waiting":
                out.info(f"   {watch.describe_change(change)}; sending it: approve, as demo-reviewer")
                decision = Decision(decision="approve", reviewer="demo-reviewer", comment="looks fine")
                await messages.signal(client, workflow_id, "review", decision)
        outcome = await runs.wait_result(client, workflow_id)
        result = outcome.result or {}
        out.info(f"   → {outcome.status}" + (f": {result.get('reason')}" if result.get("reason") else ""))
        results.append(
            {
                "workflow_id": workflow_id,
                "title": title,
                "expected": expected,
                "outcome": outcome.status,
                "result": result,
            }
        )
    return results
