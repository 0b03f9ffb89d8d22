"""`flowctl watch`: live at a terminal, one plain line per change when piped, JSON lines."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time

from conftest import FLOWCTL, Cli, order_input, uid, wait_for_status


def declined_order(flowctl: Cli) -> str:
    order_id = uid()
    run = flowctl("start", "order", "-i", json.dumps(order_input(order_id, card="tok_declined")), "--wait")
    assert run.code == 10, str(run)
    return f"order-{order_id}"


def test_piped_watch_has_one_plain_line_per_change(flowctl: Cli) -> None:
    wid = declined_order(flowctl)
    run = flowctl("watch", wid)
    assert run.code == 10, str(run)
    assert "\x1b[" not in run.stdout and "\r" not in run.stdout
    lines = run.stdout.splitlines()
    assert all(line.startswith(f"{wid} +") for line in lines)
    changes = [line.split(" ", 2)[2] for line in lines]
    assert len(changes) == len(set(changes))  # a line per change, none repeated
    assert "↩ refund_payment (done: no charge was taken)" in changes  # as demo and the live view say it
    assert "↩ release_inventory (done)" in changes
    assert changes[-1].startswith("■ compensated: charge_payment failed")


def test_watch_jsonl_streams_changes_while_it_waits(flowctl: Cli) -> None:
    order_id = uid()
    wid = f"order-{order_id}"
    assert flowctl("start", "order", "-i", json.dumps(order_input(order_id, price=3000.0))).code == 0
    wait_for_status(flowctl, wid, "awaiting_review")
    watcher = subprocess.Popen(
        [FLOWCTL, "watch", wid, "-o", "jsonl"], stdout=subprocess.PIPE, text=True, env=flowctl.env
    )
    assert watcher.stdout is not None
    seen = []
    for line in watcher.stdout:
        change = json.loads(line)
        seen.append(change)
        if change["change"] == "waiting":
            # The review timer is a day; seconds have passed since it started (more on a busy machine).
            assert change["waiting_for"].startswith("fraud review") and re.fullmatch(
                r"1d|23h59m\d+s", change["time_left"]
            )
            assert flowctl("reject", wid, "--as", "risk", "--comment", "stolen card").code == 0
    assert watcher.wait(timeout=60) == 10
    kinds = [c["change"] for c in seen]
    assert kinds.index("waiting") < kinds.index("compensation") < kinds.index("outcome")
    assert seen[-1]["outcome"] == "rejected"
    assert [c["action"] for c in seen if c["change"] == "compensation"] == ["refund_payment", "release_inventory"]


def test_follow_shows_retries_while_they_happen_and_resumed_before_what_follows(flowctl: Cli) -> None:
    """A retry writes no history event until its activity ends; the view still shows each
    attempt as it comes (from the workflow's description), once, before the step succeeds.
    A decision that resumes a workflow is shown before the steps it leads to."""
    order_id = uid()
    follower = subprocess.Popen(
        [FLOWCTL, "start", "order", "-i", json.dumps(order_input(order_id, card="tok_flaky")), "--follow", "-o",
         "jsonl"], stdout=subprocess.PIPE, text=True, env=flowctl.env,
    )  # fmt: skip
    assert follower.stdout is not None
    seen, arrived = [], []
    for line in follower.stdout:
        if '"change"' in line:
            seen.append(json.loads(line))
            arrived.append(time.monotonic())
    assert follower.wait(timeout=60) == 0
    kinds = [c["change"] for c in seen]
    retries = [c for c in seen if c["change"] == "retry"]
    assert retries and all(c["activity"] == "payment.charge" for c in retries), seen
    assert [c["attempt"] for c in retries] == [2, 3], retries  # each attempt once, in order
    assert "tok_flaky" in retries[-1]["last_failure"]
    charged = next(i for i, c in enumerate(seen) if c.get("step") == "charge_payment")
    # Said while the charge is still out (attempt 3 waits 2s), not from the history once it ended.
    last_retry = max(i for i, kind in enumerate(kinds) if kind == "retry")
    assert kinds.index("retry") < charged and arrived[last_retry] < arrived[charged] - 0.3, seen

    review = uid()
    wid = f"order-{review}"
    assert flowctl("start", "order", "-i", json.dumps(order_input(review, price=3000.0))).code == 0
    wait_for_status(flowctl, wid, "awaiting_review")
    watcher = subprocess.Popen([FLOWCTL, "watch", wid], stdout=subprocess.PIPE, text=True, env=flowctl.env)
    assert watcher.stdout is not None
    lines = []
    for line in watcher.stdout:
        lines.append(line.split(" ", 2)[2].strip())
        if lines[-1].startswith("… waiting for fraud review"):
            assert flowctl("approve", wid, "--as", "risk").code == 0
    assert watcher.wait(timeout=60) == 0
    assert lines.index("▶ resumed") < lines.index("✓ create_shipment"), lines


def test_a_finished_workflow_replays_the_lines_a_live_watch_showed(flowctl: Cli) -> None:
    """Two watchers of one order agree: one live from the start, one after it ended. The lines
    are in history order (a retry before the step it belongs to) and timed from the
    workflow's start, not from when the watch began."""
    order_id = uid()
    wid = f"order-{order_id}"
    assert flowctl("start", "order", "-i", json.dumps(order_input(order_id, card="tok_flaky", price=3000.0))).code == 0
    live = subprocess.Popen([FLOWCTL, "watch", wid, "-o", "jsonl"], stdout=subprocess.PIPE, text=True, env=flowctl.env)
    assert live.stdout is not None
    shown = []
    for line in live.stdout:
        shown.append(json.loads(line))
        if shown[-1]["change"] == "waiting":
            assert flowctl("approve", wid, "--as", "risk", "--comment", "known").code == 0
    assert live.wait(timeout=60) == 0
    replayed = flowctl("watch", wid, "-o", "jsonl")
    assert replayed.code == 0, str(replayed)
    again = [json.loads(line) for line in replayed.stdout.splitlines()]

    def same(changes: list[dict[str, object]]) -> list[dict[str, object]]:
        # An attempt before the last is known only if a poll saw it live: its failure and time with it.
        return [{k: v for k, v in c.items() if c["change"] != "retry" or k in ("change", "activity", "attempt")}
                for c in changes]  # fmt: skip

    assert same(shown) == same(again), (shown, again)
    kinds = [c["change"] for c in again]
    assert kinds == ["step", "retry", "retry", "step", "step", "waiting", "resumed", "step", "step", "outcome"], kinds
    assert [c.get("step") for c in again if c["change"] == "step"][1] == "charge_payment"
    waiting = again[kinds.index("waiting")]
    assert waiting["waiting_for"].startswith("fraud review") and waiting["time_left"] == "1d", waiting
    assert waiting["then"] == "rejected: no review decision"
    times = [c["elapsed"] for c in again]
    assert times == sorted(times) and times[0] < 1 and times[-1] >= 3, times  # backoff 1s + 2s before the charge
    text = flowctl("watch", wid).stdout.splitlines()
    assert [line.split(" ", 2)[1] for line in text] == [f"+{t:.1f}s" for t in times], text


def test_each_attempt_is_said_once_per_activity_even_of_one_type() -> None:
    """Attempts count per activity, not per type (onboarding sends email.send three times);
    an attempt no poll saw is still said, without the failure before it."""
    from flowctl.watch import View, _retry

    view = View("onboarding-u-1")
    first = _retry(view, "2", "email.send", 2, "smtp down")
    assert [(c["attempt"], c["last_failure"]) for c in first] == [(2, "smtp down")]
    assert _retry(view, "2", "email.send", 2, "smtp down") == []  # the history's event, after the poll
    later = _retry(view, "7", "email.send", 3, "smtp down again")  # attempt 2 of this one was missed
    assert [(c["attempt"], c["last_failure"]) for c in later] == [(2, None), (3, "smtp down again")]
    assert view.retries == {"2": ("email.send", 2), "7": ("email.send", 3)}


def test_watch_on_a_terminal_draws_a_live_view(flowctl: Cli) -> None:
    wid = declined_order(flowctl)
    env = {k: v for k, v in flowctl.env.items() if k != "NO_COLOR"}
    env.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
    leader, follower = pty.openpty()
    proc = subprocess.Popen([FLOWCTL, "watch", wid], stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    assert proc.wait(timeout=30) == 10
    text = output.decode(errors="replace")
    assert "\x1b[" in text  # colour and cursor control: a live view, not lines
    assert "↩ refund_payment (done)" in text and "↩ release_inventory (done)" in text
    assert "■ compensated" in text


def test_watch_missing_workflow_exits_3(flowctl: Cli) -> None:
    run = flowctl("watch", "order-" + uid())
    assert run.code == 3 and run.stdout == "", str(run)


def test_a_server_lost_during_watch_is_one_line_and_exit_5(tmp_path: object) -> None:
    """The server goes away mid-watch: one line saying so and what to check, exit 5, and none
    of the SDK's own retry warnings (coloured, several lines) on stderr."""
    from pathlib import Path

    from conftest import free_port, isolated_env, write_config

    root = Path(str(tmp_path))
    cli = Cli(isolated_env(root, write_config(root, port=free_port(), task_queue="lost")), root)
    assert cli("server", "start").code == 0
    try:
        started = cli("start", "order", "-i", json.dumps(order_input(uid())), "-o", "json")
        assert started.code == 0, str(started)
        watch = subprocess.Popen(
            [FLOWCTL, "watch", started.json()["workflow_id"]],
            env={**cli.env, "FLOWCTL_OUTAGE_LIMIT": "3s"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(2)  # watching: no worker runs this queue, so the order waits for one
        assert watch.poll() is None
    finally:
        assert cli("server", "stop").code == 0
    _, err = watch.communicate(timeout=120)
    assert watch.returncode == 5, err
    # It says it waits the outage out (outage_limit), then gives up in one line saying what to check.
    warned, error = err.splitlines()
    assert "\x1b" not in err and "Temporal is unreachable" in warned and "for up to 3s" in warned, err
    assert "Temporal stayed unreachable" in error and "flowctl server status" in error, err


def test_watch_counts_down_to_the_deadline_that_matters_and_names_it(flowctl: Cli) -> None:
    """An onboarding's reminder is not its deadline; an approval's escalation comes before expiry."""
    user = uid()
    request = uid()
    assert flowctl("start", "onboarding", "-i", json.dumps({"user_id": user, "email": f"{user}@example.com",
                   "name": "N", "verify_within": "2h", "remind_after": "1h"})).code == 0  # fmt: skip
    assert flowctl("start", "approval", "-i", json.dumps({"request_id": request, "requester": "alice", "title": "t",
                   "amount": 5000, "approvers": ["bob"], "escalate_to": "dana", "escalate_after": "1h",
                   "expire_after": "3h"})).code == 0  # fmt: skip
    expected = {
        f"onboarding-{user}": (r"1h59m\d+s|2h", "the account is deactivated: email not verified"),
        f"approval-{request}": (r"59m\d+s|1h", "escalated to dana"),
    }
    for wid, (left, then) in expected.items():
        watcher = subprocess.Popen([FLOWCTL, "watch", wid, "-o", "jsonl"], stdout=subprocess.PIPE, text=True,
                                   env=flowctl.env)  # fmt: skip
        assert watcher.stdout is not None
        try:
            for line in watcher.stdout:
                change = json.loads(line)
                if change["change"] == "waiting":
                    assert re.fullmatch(left, change["time_left"]) and change["then"] == then, change
                    break
        finally:
            watcher.kill()
            watcher.wait()
        state = flowctl("query", wid, "-o", "json").json()
        assert state["deadline"] and state["at_deadline"] == then, state
        flowctl("terminate", wid, "--reason", "cleanup")


def _watched(name: str) -> list[str]:
    """The lines `watch` prints for a recorded history (tests/histories), read as it reads one."""
    import asyncio
    from pathlib import Path
    from types import SimpleNamespace

    from temporalio.client import WorkflowHistory

    from flowctl.connect import data_converter
    from flowctl.watch import View, _Reader, describe_change

    path = Path(__file__).parent / "histories" / f"{name}.json"
    history = WorkflowHistory.from_json(name, path.read_text())
    reader = _Reader(SimpleNamespace(data_converter=data_converter()), View(name))  # type: ignore[arg-type]

    async def read() -> list[str]:
        return [describe_change(change) for event in history.events for change in await reader.read(event)]

    return asyncio.run(read())


def test_recorded_waits_read_as_they_were_shown_live() -> None:
    """A run keeps each wait in its memo, narrowed as approvals come; a cancelled wait is
    followed by the cancel and the compensations, not by 'resumed'."""
    assert _watched("approval-h-approved-waits") == [
        "✓ prescreen",
        "✓ request_review",
        "… waiting for 2 more approval(s) (update 'decide'), 3d left, then expires: no decision",
        "… waiting for 1 more approval(s) (update 'decide'), 3d left, then expires: no decision",
        "▶ resumed",
        "✓ execute",
        "✓ notify_requester",
        "■ approved: approved by bob, carol",
    ]
    order = _watched("order-h-reviewed-waits")
    assert order[3:5] == [
        "… waiting for fraud review decision (signal 'review'), 1d left, then rejected: no review decision",
        "▶ resumed",
    ], order
    assert order[-1] == "■ completed"


def test_runs_from_before_the_waits_memo_still_read_in_order() -> None:
    """Older runs name a wait by its kind (from FlowWaitingFor); their steps, compensations,
    cancel and outcome read as for any run."""
    assert _watched("order-h-cancelled-settled") == [
        "✓ reserve_inventory",
        "✓ charge_payment",
        "✓ fraud_screen",
        "… waiting for review",
        "✗ cancel requested: customer asked",
        "↩ cancel_shipment (done)",
        "↩ refund_payment (done)",
        "↩ release_inventory (done)",
        "■ cancelled: customer asked",
    ]
    declined = _watched("order-h-declined")
    assert declined[-3:] == [
        "↩ refund_payment (done: no charge was taken)",
        "↩ release_inventory (done)",
        "■ compensated: charge_payment failed: payment declined by the card issuer",
    ], declined


def test_watch_timeout_leaves_a_waiting_workflow_running_and_exits_20(flowctl: Cli) -> None:
    held = f"order-{uid('wt')}"
    assert flowctl("start", "order", "-i", json.dumps(order_input(held.removeprefix("order-"), price=5000))).code == 0
    wait_for_status(flowctl, held, "awaiting_review")
    run = flowctl("watch", held, "--timeout", "2s", timeout=60)
    assert run.code == 20 and "still running after 2s" in run.stderr, str(run)
    assert "waiting for fraud review decision" in run.stdout  # what happened so far was shown
    doc = flowctl("watch", held, "--timeout", "1s", "-o", "json", timeout=60)
    assert doc.code == 20 and doc.json()["status"] == "running", str(doc)
    assert flowctl("watch", held, "--timeout", "soon").code == 2
    assert flowctl("cancel", held).code == 0
