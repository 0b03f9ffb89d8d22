"""`flowctl demo` on a fresh machine: it brings up what it needs, runs three orders, cleans up."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from conftest import Cli, free_port, isolated_env, write_config


@pytest.mark.slow
def test_demo_from_nothing_runs_three_outcomes_and_stops_what_it_started(tmp_path: Path) -> None:
    port = free_port()
    cli = Cli(isolated_env(tmp_path, write_config(tmp_path, port=port, task_queue="demo")), tmp_path)
    run = cli("demo", timeout=300)
    assert run.code == 0, str(run)
    assert "starting the embedded one" in run.stderr and "starting one" in run.stderr
    for line in ("1. a successful order", "2. a declined payment", "3. a large order held for fraud review"):
        assert line in run.stderr
    assert "↩ refund_payment (done: no charge was taken)" in run.stderr
    assert "↩ release_inventory (done)" in run.stderr
    assert "sending it: approve" in run.stderr
    assert run.stderr.count("→ completed") == 2 and run.stderr.count("→ compensated") == 1
    assert "demo ok" in run.stdout
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # the embedded server it started is stopped again
    status = cli("server", "status", "-o", "json")
    assert status.code == 5 and status.json()["running"] is False


def test_demo_json_on_the_shared_stack(flowctl: Cli) -> None:
    run = flowctl("demo", "-o", "json", timeout=300)
    assert run.code == 0, str(run)
    report = run.json()
    assert report["ok"] is True
    assert [o["outcome"] for o in report["orders"]] == ["completed", "compensated", "completed"]
    assert report["orders"][2]["result"]["reviewed_by"] == "demo-reviewer"
