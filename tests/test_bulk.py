"""Bulk start from JSONL: one line per workflow, idempotent by business key, partial failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Cli, order_input, read_terminal, uid


def count(flowctl: Cli, queue: str) -> int:
    run = flowctl("list", "--query", f"TaskQueue = '{queue}'", "--limit", "10000", "-o", "json")
    assert run.code == 0, str(run)
    return len(run.json())


@pytest.mark.slow
def test_bulk_start_200_then_again_starts_nothing_twice(flowctl: Cli, tmp_path: Path) -> None:
    queue = uid("tq-bulk-")
    env = {"FLOWCTL_TASK_QUEUE": queue}
    prefix = uid("b")
    orders = tmp_path / "orders.jsonl"
    orders.write_text("".join(json.dumps(order_input(f"{prefix}-{i}")) + "\n" for i in range(200)))
    first = flowctl("start", "order", "--from", str(orders), "--concurrency", "50", env=env, timeout=300)
    assert first.code == 0, str(first)
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert len(lines) == 200
    assert all(line["workflow_id"].startswith(f"order-{prefix}-") and line["run_id"] for line in lines)
    assert sorted(line["line"] for line in lines) == list(range(1, 201))
    assert not any(line.get("already_started") for line in lines)
    assert count(flowctl, queue) == 200
    again = flowctl("start", "order", "--from", str(orders), env=env, timeout=300)
    assert again.code == 0, str(again)
    second = [json.loads(line) for line in again.stdout.splitlines()]
    assert len(second) == 200 and all(line["already_started"] for line in second)
    assert {line["run_id"] for line in second} == {line["run_id"] for line in lines}
    assert count(flowctl, queue) == 200
    assert "0 started, 200 already started" in again.stderr
    cleanup = flowctl(
        "terminate", "--query", f"TaskQueue = '{queue}'", "--reason", "test cleanup", "--yes", timeout=300
    )
    assert cleanup.code == 0, str(cleanup)


def test_bulk_invalid_lines_exit_2_and_valid_lines_still_start(flowctl: Cli, tmp_path: Path) -> None:
    queue = uid("tq-bulk-")
    env = {"FLOWCTL_TASK_QUEUE": queue}
    good = [order_input(uid()) for _ in range(2)]
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        json.dumps(good[0]) + "\n"
        + '{"order_id": broken\n'
        + "\n"
        + json.dumps({**good[1], "order_id": uid(), "items": [{"sku": "SKU-1", "quantity": -3, "unit_price": 1}]}) + "\n"
        + json.dumps(good[1]) + "\n"
    )  # fmt: skip
    run = flowctl("start", "order", "--from", str(path), "-o", "jsonl", env=env)
    assert run.code == 2, str(run)
    lines = {line["line"]: line for line in map(json.loads, run.stdout.splitlines())}
    assert sorted(lines) == [1, 2, 4, 5]
    assert "malformed JSON" in lines[2]["error"] and "line 2" in lines[2]["error"]
    assert "items.0.quantity" in lines[4]["error"]
    assert lines[1]["run_id"] and lines[5]["run_id"]
    assert count(flowctl, queue) == 2
    dry = flowctl("start", "order", "--from", str(path), "--dry-run", env=env)
    assert dry.code == 2 and count(flowctl, queue) == 2
    flowctl("terminate", "--query", f"TaskQueue = '{queue}'", "--reason", "test cleanup", "--yes")


def test_bulk_at_a_terminal_keeps_its_json_lines_on_stdout(flowctl: Cli, tmp_path: Path) -> None:
    """`flowctl start --from F > started.jsonl` typed at a terminal: the progress bar draws on
    the terminal (stderr), and every JSON line still lands in the file, none on the terminal."""
    import os
    import pty
    import subprocess

    from conftest import FLOWCTL

    queue = uid("tq-bulk-")
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(json.dumps(order_input(uid())) + "\n" for _ in range(5)))
    leader, follower = pty.openpty()
    with (tmp_path / "started.jsonl").open("w") as out:
        proc = subprocess.Popen(
            [FLOWCTL, "start", "order", "--from", str(path)],
            env={**flowctl.env, "FLOWCTL_TASK_QUEUE": queue}, stdout=out, stderr=follower,
        )  # fmt: skip
        os.close(follower)
        screen = read_terminal(leader)
        assert proc.wait(timeout=60) == 0, screen.decode(errors="replace")
    started = [json.loads(line) for line in (tmp_path / "started.jsonl").read_text().splitlines()]
    assert len(started) == 5 and all(line["run_id"] for line in started)
    assert b"run_id" not in screen and b"5 started" in screen
    assert count(flowctl, queue) == 5
    flowctl("terminate", "--query", f"TaskQueue = '{queue}'", "--reason", "test cleanup", "--yes")


def test_bulk_from_stdin_and_flag_clashes(flowctl: Cli) -> None:
    queue = uid("tq-bulk-")
    data = json.dumps(order_input(uid())) + "\n"
    run = flowctl("start", "order", "--from", "-", stdin=data, env={"FLOWCTL_TASK_QUEUE": queue})
    assert run.code == 0 and json.loads(run.stdout)["run_id"], str(run)
    clash = flowctl("start", "order", "--from", "-", "--follow", stdin=data)
    assert clash.code == 2 and "--follow" in clash.stderr
    missing = flowctl("start", "order", "--from", "/nonexistent.jsonl")
    assert missing.code == 2 and "cannot read" in missing.stderr
    flowctl("terminate", "--query", f"TaskQueue = '{queue}'", "--reason", "test cleanup", "--yes")


def test_bulk_start_does_without_the_sdk_client(flowctl: Cli, tmp_path: Path) -> None:
    """Importing `temporalio.client` is about a third of a bulk start's start-up, and bulk
    sends its start requests without it; this keeps a later import from bringing it back."""
    queue = uid("tq-bulk-")
    path = tmp_path / "two.jsonl"
    path.write_text("".join(json.dumps(order_input(uid())) + "\n" for _ in range(2)))
    code = (
        "import os, sys\n"
        "from flowctl.cli import run\n"
        f"code = run(['start', 'order', '--from', {str(path)!r}])\n"
        "sys.stdout.flush()\n"
        # os._exit as flowctl's main() does: an interpreter that used the SDK may crash at exit
        "os._exit(code or ('temporalio.client' in sys.modules and 99))\n"
    )
    env = {**flowctl.env, "FLOWCTL_TASK_QUEUE": queue}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert [bool(json.loads(line)["run_id"]) for line in proc.stdout.splitlines()] == [True, True]
    assert count(flowctl, queue) == 2
    flowctl("terminate", "--query", f"TaskQueue = '{queue}'", "--reason", "test cleanup", "--yes")


def test_a_server_error_flowctl_cannot_place_fails_its_line_only() -> None:
    """An error no exit code but 1 fits fails the line it came from; the other lines start.
    The server is the part faked: a dev server cannot be made to answer one start so."""
    import asyncio
    from types import SimpleNamespace

    from temporalio.api.workflowservice.v1 import StartWorkflowExecutionResponse
    from temporalio.service import RPCError, RPCStatusCode

    from flowctl import catalog
    from flowctl.connect import data_converter
    from flowctl.inputs import BulkLine
    from flowctl.ops import bulk

    kind = catalog.get("order")
    lines = [BulkLine(n, payload=kind.input_model.model_validate(order_input(f"srv-{n}"))) for n in (1, 2, 3)]

    async def start_workflow_execution(request: object, retry: bool) -> StartWorkflowExecutionResponse:
        if request.workflow_id == "order-srv-2":  # type: ignore[attr-defined]
            raise RPCError("not today", RPCStatusCode.UNIMPLEMENTED, b"")
        return StartWorkflowExecutionResponse(run_id=f"run-{request.workflow_id}")  # type: ignore[attr-defined]

    service = SimpleNamespace(
        config=SimpleNamespace(identity="test"),
        workflow_service=SimpleNamespace(start_workflow_execution=start_workflow_execution),
    )
    reported: list[dict[str, object]] = []
    outcomes = asyncio.run(
        bulk.bulk_start(
            service,  # type: ignore[arg-type]
            "default",
            data_converter(None),
            kind,
            lines,
            task_queue="q",
            concurrency=2,
            rate=None,
            report=reported.append,
        )
    )
    assert reported == outcomes
    assert outcomes[0]["run_id"] == "run-order-srv-1" and outcomes[2]["run_id"] == "run-order-srv-3"
    assert outcomes[1] == {
        "line": 2,
        "workflow_id": "order-srv-2",
        "error": "server error UNIMPLEMENTED: not today",
        "code": 1,
    }


def test_bulk_unreachable_server_exits_5(local_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(order_input("x-1")) + "\n")
    run = local_cli("start", "order", "--from", str(path))
    assert run.code == 5 and "cannot reach Temporal" in run.stderr, str(run)
