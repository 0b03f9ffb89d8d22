"""Failures from outside flowctl (odd option values, closed pipes) end with their documented code."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import FLOWCTL, Cli, Stack, order_input, uid
from hypothesis import given, settings
from hypothesis import strategies as st

from flowctl.cli import hoist_globals, valued_options


def _command(words: list[str]) -> frozenset[str]:
    import typer.main

    from flowctl.cli import commands  # noqa: F401 - registers every command
    from flowctl.cli.app import app

    return valued_options(typer.main.get_command(app), words)


@settings(max_examples=200, deadline=None)
@given(value=st.text(min_size=1).map(lambda s: "-" + s), option=st.sampled_from(["--reason", "--comment", "--as"]))
def test_an_option_value_is_never_taken_for_a_global_option(value: str, option: str) -> None:
    valued = _command(["reject"]) | _command(["cancel"])
    argv = ["reject", "order-1", option, value, "-o", "json"]
    hoisted = hoist_globals(argv, valued)
    assert hoisted[:2] == ["-o", "json"] and hoisted[2:] == argv[:4], hoisted


def test_an_option_value_like_a_global_reaches_the_workflow(flowctl: Cli) -> None:
    key = uid()
    wid = f"order-{key}"
    assert flowctl("start", "order", "-i", json.dumps(order_input(key, price=2000.0))).code == 0
    for reason in ("-overdue", "-o json"):
        run = flowctl("cancel", wid, "--reason", reason, "-o", "json")
        assert run.code in (0, 4), str(run)  # 4: the first one already cancelled it
    ended = flowctl("result", wid, "--timeout", "1m", "-o", "json")
    assert ended.code == 12 and ended.json()["error"] == "cancelled: -overdue", str(ended)
    refused = flowctl("reject", wid, "--as", "risk", "--comment", "--debug")
    assert refused.code == 4 and "already" in refused.stderr, str(refused)  # the comment is "--debug"


@pytest.fixture(scope="module")
def finished(stack: Stack) -> str:
    key = uid()
    assert stack.cli("start", "order", "-i", json.dumps(order_input(key)), "--wait").code == 0
    return f"order-{key}"


@pytest.mark.parametrize(
    "args",
    [
        ["list", "-o", "jsonl"],
        ["list"],
        ["history", "{wid}"],
        ["history", "{wid}", "-o", "jsonl"],
        ["describe", "{wid}"],
    ],
)
def test_a_closed_stdout_ends_with_141_and_says_nothing(flowctl: Cli, finished: str, args: list[str]) -> None:
    """`flowctl ... | head -1`: the reader has gone before flowctl writes, as the shell would see it."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [FLOWCTL, *(a.format(wid=finished) for a in args)],
            stdout=write,
            stderr=subprocess.PIPE,
            env=flowctl.env,
            cwd=flowctl.cwd,
            timeout=60,
        )
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, b""), proc
