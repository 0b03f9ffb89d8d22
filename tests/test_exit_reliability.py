"""Every flowctl process ends with the exit code it meant: no abort or segfault at exit."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import Cli, order_input, uid

INVOCATIONS = 200


@pytest.mark.slow
def test_200_real_invocations_exit_with_their_intended_code(flowctl: Cli, tmp_path: Path) -> None:
    order_id = uid()
    wid = f"order-{order_id}"
    assert flowctl("start", "order", "-i", json.dumps(order_input(order_id)), "--wait").code == 0
    again = tmp_path / "again.jsonl"  # bulk start's own connection, without the SDK's Client
    again.write_text(json.dumps(order_input(order_id)) + "\n")
    commands: list[tuple[tuple[str, ...], int]] = [
        (("list", "--limit", "5", "-o", "json"), 0),
        (("describe", wid, "-o", "json"), 0),
        (("query", wid, "-o", "json"), 0),
        (("describe", "order-missing-" + order_id), 3),
        (("start", "order", "--from", str(again)), 0),
    ]

    def check(i: int) -> str | None:
        args, expected = commands[i % len(commands)]
        run = flowctl(*args)
        if run.code != expected or "panicked" in run.stderr or "Fatal Python error" in run.stderr:
            return f"#{i}: {run}"
        if expected == 0:
            json.loads(run.stdout)  # the whole document was written before exit
        return None

    # Two at a time: each is still its own process with its own exit; the suite is shorter.
    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(check, range(INVOCATIONS)) if f is not None]
    assert failures == [], f"{len(failures)} of {INVOCATIONS} ended wrongly:\n" + "\n".join(failures[:5])
