"""`flowctl count`: the server's counts, in total or by status, flow status or kind."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from conftest import Cli, order_input, start, uid


def counted(flowctl: Cli, *args: str, total: int) -> dict[str, Any]:
    """The count once visibility has caught up with `total` workflows (it lags a little)."""
    deadline = time.monotonic() + 30
    while True:
        run = flowctl("count", *args, "-o", "json")
        assert run.code == 0, str(run)
        if run.json()["total"] == total or time.monotonic() > deadline:
            return dict(run.json())
        time.sleep(0.3)


def test_count_by_flow_status_says_a_terminated_review_is_terminated_not_awaiting(flowctl: Cli) -> None:
    prefix = uid("cn")
    for i in range(3):
        assert flowctl("start", "order", "-i", json.dumps(order_input(f"{prefix}-{i}")), "--wait").code == 0
    held = start(flowctl, "order", order_input(f"{prefix}-held", price=5000))
    stopped = start(flowctl, "order", order_input(f"{prefix}-stopped", price=5000))
    for workflow_id in (held, stopped):
        assert flowctl("wait", workflow_id, "--for", "awaiting_review", "--timeout", "60s").code == 0
    assert flowctl("terminate", stopped, "--reason", "test", "--yes").code == 0
    query = ("--query", f"WorkflowId STARTS_WITH 'order-{prefix}-'")
    time.sleep(1)  # the upserted flow statuses reach visibility a moment after the events
    by_flow = counted(flowctl, *query, "--by", "flow-status", total=5)
    assert by_flow == {
        "total": 5,
        "by": "flow-status",
        "counts": {"completed": 3, "awaiting_review": 1, "terminated": 1},
    }, by_flow
    by_status = counted(flowctl, *query, "--by", "status", total=5)
    assert by_status["counts"] == {"completed": 3, "running": 1, "terminated": 1}
    assert counted(flowctl, *query, "--by", "kind", total=5)["counts"] == {"order": 5}
    only = counted(flowctl, "--kind", "order", "--status", "awaiting_review", *query, total=1)
    assert only == {"total": 1}
    text = flowctl("count", *query, "--by", "status")
    assert text.code == 0 and re.search(r"completed +3", text.stdout) and "total 5" in text.stdout, str(text)
    assert flowctl("cancel", held, "--yes").code == 0


def test_count_refuses_a_bad_grouping_or_query_in_one_line(flowctl: Cli) -> None:
    for args in (["--by", "colour"], ["--query", "bad (("], ["--status", "nope"]):
        run = flowctl("count", *args)
        assert run.code == 2 and len(run.stderr.splitlines()) == 1, str(run)
    unknown = flowctl("count", "--kind", "ordr")
    assert unknown.code == 3 and "did you mean 'order'?" in unknown.stderr, str(unknown)
