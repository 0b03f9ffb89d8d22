"""`flowctl wait`: many workflows waited for at once, a line for each as it ends, one exit code
that says the worst way one ended."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Cli, order_input, start, uid, wait_for_status


def started_file(flowctl: Cli, tmp_path: Path, prefix: str, count: int, declined: set[int]) -> Path:
    orders = tmp_path / "orders.jsonl"
    lines = [order_input(f"{prefix}-{i}", card="tok_declined" if i in declined else "tok_visa") for i in range(count)]
    orders.write_text("".join(json.dumps(line) + "\n" for line in lines) + "not json\n")
    run = flowctl("start", "order", "--from", str(orders))
    assert run.code == 2, str(run)  # the bad line is refused, the others started
    started = tmp_path / "started.jsonl"
    started.write_text(run.stdout)
    return started


def test_wait_from_the_output_of_start_from_gives_a_line_for_each_and_the_worst_code(
    flowctl: Cli, tmp_path: Path
) -> None:
    prefix = uid("w")
    started = started_file(flowctl, tmp_path, prefix, 20, declined={3, 7})
    run = flowctl("wait", "--from", str(started), "-o", "jsonl", timeout=180)
    assert run.code == 10, str(run)  # two compensated: completed, but unsuccessfully
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert sorted(line["workflow_id"] for line in lines) == sorted(f"order-{prefix}-{i}" for i in range(20))
    statuses = {line["workflow_id"]: line["status"] for line in lines}
    assert {w for w, s in statuses.items() if s == "compensated"} == {f"order-{prefix}-3", f"order-{prefix}-7"}
    assert "18 completed, 2 compensated" in run.stderr and "1 line(s) of --from named no workflow" in run.stderr


def test_wait_says_still_running_at_the_timeout_and_names_an_unknown_id(flowctl: Cli) -> None:
    held = start(flowctl, "order", order_input(uid("wh"), price=5000))  # held for review
    wait_for_status(flowctl, held, "awaiting_review")
    done = start(flowctl, "order", order_input(uid("wd")))
    run = flowctl("wait", held, done, "nobody-here", "--timeout", "3s", "-o", "jsonl", timeout=120)
    assert run.code == 20, str(run)  # the worst: one still running
    by_id = {line["workflow_id"]: line for line in map(json.loads, run.stdout.splitlines())}
    assert by_id[held]["status"] == "running" and by_id[held]["code"] == 20
    assert by_id[done]["status"] == "completed" and by_id[done]["code"] == 0
    assert by_id["nobody-here"]["code"] == 3 and "not found" in by_id["nobody-here"]["error"]
    assert flowctl("approve", held, "--as", "risk").code == 0
    assert flowctl("wait", held, done).code == 0  # both succeeded now


def test_wait_by_query_and_its_usage_errors(flowctl: Cli, tmp_path: Path) -> None:
    prefix = uid("wq")
    for i in range(3):
        start(flowctl, "order", order_input(f"{prefix}-{i}"))
    run = flowctl("wait", "--query", f"WorkflowId STARTS_WITH 'order-{prefix}-'", "-o", "jsonl", timeout=120)
    assert run.code == 0 and len(run.stdout.splitlines()) == 3, str(run)
    for args in ([], ["x", "--query", "a = 'b'"], ["--from", str(tmp_path / "missing.jsonl")]):
        refused = flowctl("wait", *args)
        assert refused.code == 2 and len(refused.stderr.splitlines()) == 1, str(refused)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"workflow_id": "x"}\n[not json\n')
    refused = flowctl("wait", "--from", str(bad))
    assert refused.code == 2 and "line 2 is not a JSON object" in refused.stderr, str(refused)


def test_wait_under_o_json_is_one_document(flowctl: Cli) -> None:
    done = start(flowctl, "order", order_input(uid("wj")))
    run = flowctl("wait", done, "nobody-else", "-o", "json", timeout=120)
    assert run.code == 3, str(run)
    document = json.loads(run.stdout)  # one document, not a line each
    assert {line["workflow_id"] for line in document} == {done, "nobody-else"}


def test_start_from_with_wait_prints_each_line_as_its_workflow_ends_and_exits_as_wait_does(
    flowctl: Cli, tmp_path: Path
) -> None:
    prefix = uid("sw")
    orders = tmp_path / "orders.jsonl"
    lines = [order_input(f"{prefix}-{i}", card="tok_declined" if i == 2 else "tok_visa") for i in range(6)]
    orders.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"order_id": 7}\n')
    run = flowctl("start", "order", "--from", str(orders), "--wait", timeout=180)
    assert run.code == 10, str(run)  # one compensated is the worst; the bad line is reported, not the exit
    by_line = {line["line"]: line for line in map(json.loads, run.stdout.splitlines())}
    assert sorted(by_line) == list(range(1, 8))
    assert by_line[3]["status"] == "compensated" and by_line[3]["code"] == 10 and by_line[3]["run_id"]
    assert all(by_line[n]["status"] == "completed" and by_line[n]["code"] == 0 for n in (1, 2, 4, 5, 6))
    assert by_line[7]["code"] == 2 and "order_id" in by_line[7]["error"]
    assert "6 started" in run.stderr and "5 completed, 1 compensated" in run.stderr
    again = flowctl("start", "order", "--from", str(orders), "--wait", timeout=180)  # all ended: nothing twice
    assert again.code == 10 and "0 started, 6 already started" in again.stderr, str(again)


def test_start_from_with_wait_times_out_as_one_deadline_and_timeout_needs_wait(flowctl: Cli, tmp_path: Path) -> None:
    prefix = uid("st")
    orders = tmp_path / "orders.jsonl"
    orders.write_text(json.dumps(order_input(f"{prefix}-held", price=5000)) + "\n")  # held for review
    run = flowctl("start", "order", "--from", str(orders), "--wait", "--timeout", "2s", timeout=120)
    assert run.code == 20, str(run)
    [line] = map(json.loads, run.stdout.splitlines())
    assert line["status"] == "running" and line["workflow_id"] == f"order-{prefix}-held"
    refused = flowctl("start", "order", "--from", str(orders), "--timeout", "2s")
    assert refused.code == 2 and "needs --wait" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert flowctl("cancel", f"order-{prefix}-held", "--yes").code == 0


def test_wait_for_a_flow_status_returns_once_there_and_says_when_it_ended_elsewhere(flowctl: Cli) -> None:
    held = start(flowctl, "order", order_input(uid("fr"), price=5000))  # held for review
    run = flowctl("wait", held, "--for", "awaiting_review", "--timeout", "60s", "-o", "jsonl", timeout=120)
    assert run.code == 0, str(run)
    assert json.loads(run.stdout)["status"] == "awaiting_review"
    still = flowctl("wait", held, "--for", "closed", "--timeout", "2s", "-o", "jsonl", timeout=120)
    assert still.code == 20 and "it is awaiting_review" in json.loads(still.stdout)["error"], str(still)
    small = start(flowctl, "order", order_input(uid("fs")))  # never reviewed
    missed = flowctl("wait", small, "--for", "awaiting_review", "--timeout", "60s", "-o", "jsonl", timeout=120)
    assert missed.code == 10, str(missed)
    assert "ended completed without reaching awaiting_review" in json.loads(missed.stdout)["error"]
    assert flowctl("approve", held, "--as", "risk").code == 0
    # It has been there: a script that came late is not left waiting for a state already passed.
    assert flowctl("wait", held, "--for", "awaiting_review", "--timeout", "60s").code == 0
    closed = flowctl("wait", held, small, "--for", "closed", "-o", "jsonl", timeout=120)
    assert closed.code == 0 and {line["status"] for line in map(json.loads, closed.stdout.splitlines())} == {
        "completed"
    }, str(closed)


def test_wait_for_an_unknown_status_is_refused_with_the_closest(flowctl: Cli) -> None:
    run = flowctl("wait", "order-x", "--for", "awaiting_reveiw")
    assert run.code == 2 and "did you mean 'awaiting_review'?" in run.stderr, str(run)
    assert len(run.stderr.splitlines()) == 1
    odd = flowctl("wait", "order-x", "--for", "\x1b[31mred")
    assert odd.code == 2 and "\x1b" not in odd.stderr, str(odd)


def test_start_from_with_wait_stopped_prints_the_line_of_each_workflow_it_started(flowctl: Cli, tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    from conftest import FLOWCTL

    prefix = uid("si")
    orders = tmp_path / "orders.jsonl"
    orders.write_text("".join(json.dumps(order_input(f"{prefix}-{i}")) + "\n" for i in range(3)))
    env = {**flowctl.env, "FLOWCTL_TASK_QUEUE": uid("tq-nobody-")}  # no worker: nothing ends
    proc = subprocess.Popen([FLOWCTL, "start", "order", "--from", str(orders), "--wait"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while flowctl("count", "--query", f"WorkflowId STARTS_WITH 'order-{prefix}-'", env=env).stdout.strip() != "3":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted while waiting" in err, (out, err)
    lines = [json.loads(line) for line in out.splitlines()]
    assert sorted(line["line"] for line in lines) == [1, 2, 3]
    assert all(line["run_id"] and line["status"] == "running" and line["waited"] is False for line in lines)
    flowctl("terminate", "--query", f"WorkflowId STARTS_WITH 'order-{prefix}-'", "--reason", "cleanup", "--yes")
