"""Batch cancel, terminate and signal by visibility query: dry runs touch nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from conftest import Cli, at_a_terminal, order_input, uid, wait_for_status


def events(flowctl: Cli, workflow_id: str) -> list[str]:
    run = flowctl("history", workflow_id, "-o", "jsonl")
    return [json.loads(line)["eventType"] for line in run.stdout.splitlines()]


def start_idle(flowctl: Cli, queue: str, count: int) -> list[str]:
    """Orders on a queue no worker polls: running, and untouched unless we touch them."""
    ids = []
    for _ in range(count):
        order_id = uid()
        run = flowctl("start", "order", "-i", json.dumps(order_input(order_id)), env={"FLOWCTL_TASK_QUEUE": queue})
        assert run.code == 0, str(run)
        ids.append(f"order-{order_id}")
    return ids


def test_batch_cancel_dry_run_lists_matches_and_touches_none(flowctl: Cli) -> None:
    queue = uid("tq-batch-")
    ids = start_idle(flowctl, queue, 3)
    query = f"TaskQueue = '{queue}'"
    dry = flowctl("cancel", "--query", query, "--dry-run", "-o", "json")
    assert dry.code == 0, str(dry)
    rows: list[dict[str, Any]] = dry.json()
    assert sorted(r["workflow_id"] for r in rows) == sorted(ids) and {r["would"] for r in rows} == {"cancel"}
    refused = flowctl("cancel", "--query", query)  # no terminal here, and no --yes
    assert refused.code == 2 and "without --yes" in refused.stderr, str(refused)
    declined = at_a_terminal(flowctl, ["cancel", "--query", query], answer="n")
    assert declined.code == 130 and "cancel 3 workflow(s)?" in declined.stderr, str(declined)
    asked_after = declined.stderr.index("cancel 3 workflow(s)?")
    assert all(0 <= declined.stderr.index(f"{wid}  (order)") < asked_after for wid in ids), str(declined)
    assert "nothing touched" in declined.stderr, str(declined)
    for wid in ids:
        assert "EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED" not in events(flowctl, wid)
        assert flowctl("describe", wid, "-o", "json").json()["status"] == "running"
    done = flowctl("cancel", "--query", query, "--yes", "--reason", "batch test", "-o", "jsonl")
    assert done.code == 0, str(done)
    assert sorted(json.loads(line)["workflow_id"] for line in done.stdout.splitlines()) == sorted(ids)
    for wid in ids:
        assert "EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED" in events(flowctl, wid)
    gone = flowctl("terminate", "--query", query, "--reason", "cleanup", "--yes", "-o", "json")
    assert gone.code == 0 and all(r["ok"] for r in gone.json())
    assert {flowctl("describe", wid, "-o", "json").json()["status"] for wid in ids} == {"terminated"}
    empty = flowctl("terminate", "--query", query, "--reason", "again", "--yes", "-o", "json")
    assert empty.code == 0 and empty.json() == []


def test_batch_prompt_lists_the_first_matches_and_counts_the_rest(flowctl: Cli, tmp_path: Path) -> None:
    queue = uid("tq-batch-")
    orders = tmp_path / "orders.jsonl"
    orders.write_text("".join(json.dumps(order_input(uid())) + "\n" for _ in range(12)))
    assert flowctl("start", "order", "--from", str(orders), env={"FLOWCTL_TASK_QUEUE": queue}).code == 0
    query = f"TaskQueue = '{queue}'"
    declined = at_a_terminal(flowctl, ["terminate", "--query", query, "--reason", "x"], answer="n")
    assert declined.code == 130 and "terminate 12 workflow(s)?" in declined.stderr, str(declined)
    listed = re.findall(r"^  (order-\S+)  \(order\)", declined.stderr, re.MULTILINE)
    assert len(listed) == 10 and "... and 2 more (--dry-run lists them all)" in declined.stderr, str(declined)
    still = flowctl("list", "--query", query, "--status", "running", "-o", "json")
    assert still.code == 0 and len(still.json()) == 12, str(still)
    assert flowctl("terminate", "--query", query, "--reason", "cleanup", "--yes").code == 0


def test_batch_signal_validates_and_sends_to_each(flowctl: Cli) -> None:
    ids = []
    for _ in range(2):
        order_id = uid()
        assert flowctl("start", "order", "-i", json.dumps(order_input(order_id, price=2500.0))).code == 0
        ids.append(f"order-{order_id}")
    for wid in ids:
        wait_for_status(flowctl, wid, "awaiting_review")
    query = "WorkflowId IN (" + ", ".join(f"'{wid}'" for wid in ids) + ")"
    # Checked against every matched workflow's kind before anything is touched, --dry-run too.
    for flags in (["--yes"], ["--dry-run"]):
        bad = flowctl("signal", "--query", query, "review", "--set", "decision=maybe", "--set", "reviewer=x", *flags)
        assert bad.code == 2 and "decision" in bad.stderr and bad.stdout == "", str(bad)
        unknown = flowctl("signal", "--query", query, "bogus", *flags)
        assert unknown.code == 3 and "its signals: review" in unknown.stderr and unknown.stdout == "", str(unknown)
    for wid in ids:
        assert "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED" not in events(flowctl, wid)
    sent = flowctl("signal", "--query", query, "review", "--set", "decision=approve", "--set", "reviewer=ops", "--yes")
    assert sent.code == 0, str(sent)
    for wid in ids:
        assert flowctl("result", wid, "--timeout", "30s").code == 0
    # On a closed workflow, a bad signal is still named as such before the workflow's state.
    unknown = flowctl("signal", ids[0], "bogus")
    assert unknown.code == 3 and "its signals: review" in unknown.stderr, str(unknown)
    late = flowctl("signal", ids[0], "review", "--set", "decision=approve", "--set", "reviewer=ops")
    assert late.code == 4 and "already completed" in late.stderr, str(late)


def test_id_or_query_not_both(flowctl: Cli) -> None:
    assert flowctl("cancel").code == 2
    assert flowctl("cancel", "order-x", "--query", "WorkflowType = 'Order'").code == 2
    assert flowctl("terminate", "--query", "WorkflowType = 'Order'", "--dry-run").code == 2  # --reason first
    assert flowctl("signal", "--query", "WorkflowType = 'Order'").code == 2


def test_a_query_the_server_refuses_is_named_as_written(flowctl: Cli) -> None:
    """The server's error counts positions in flowctl's wrapping of the query; the message
    quotes the user's --query instead, and nothing is touched."""
    for args in (["cancel", "--query", "FlowStatus = ", "--dry-run"], ["list", "--query", "FlowStatus = "]):
        run = flowctl(*args)
        assert run.code == 2 and run.stdout == "", str(run)
        assert "--query 'FlowStatus = '" in run.stderr and "syntax error" in run.stderr, str(run)
        assert "position" not in run.stderr and len(run.stderr.splitlines()) == 1, str(run)
