"""Shell completion from the catalog alone: kinds and message names, no server contacted."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import FLOWCTL


def complete(line: str) -> list[str]:
    """What bash completion offers for `line` (the word after its last space is being typed)."""
    words = line.split(" ")
    env = {
        **os.environ,
        "_FLOWCTL_COMPLETE": "complete_bash",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(words) - 1),
        "TEMPORAL_ADDRESS": "127.0.0.1:1",  # nothing listens: completion must not need it
    }
    proc = subprocess.run([FLOWCTL], env=env, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


@pytest.mark.parametrize(
    ("line", "offered"),
    [
        ("flowctl signal order-A-1 ", ["review"]),
        ("flowctl signal onboarding-u-1 ", ["verify-email"]),
        ("flowctl signal someone-elses-id ", ["review", "verify-email"]),
        ("flowctl update approval-PR-1 ", ["decide"]),
        ("flowctl query order-A-1 st", ["status"]),
        ("flowctl start o", ["onboarding", "order"]),
        ("flowctl kinds a", ["approval"]),
        ("flowctl config set services.local.la", ["services.local.latency"]),
        (
            "flowctl config set worker.m",
            ["worker.max_activities", "worker.max_cached_workflows", "worker.metrics_port"],
        ),
        ("flowctl config set services.http.ro", ["services.http.routes."]),
        ("flowctl schedule create o", ["onboarding", "order"]),
        ("flowctl schedule list --kind a", ["approval"]),
    ],
)
def test_completion_offers_the_kinds_names(line: str, offered: list[str]) -> None:
    assert complete(line) == offered


def test_completion_loads_no_temporalio() -> None:
    code = (
        "import os, sys\n"
        "os.environ.update(_FLOWCTL_COMPLETE='complete_bash', COMP_WORDS='flowctl signal order-A-1 ', COMP_CWORD='3')\n"
        "from flowctl.cli import run\n"
        "run([])\n"
        "sys.exit(1 if any(m.startswith('temporalio') for m in sys.modules) else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["review"]


def test_show_completion_prints_a_script() -> None:
    proc = subprocess.run(
        [FLOWCTL, "--show-completion", "bash"], capture_output=True, text=True, env={**os.environ, "SHELL": "/bin/bash"}
    )
    assert proc.returncode == 0, proc.stderr
    assert "_FLOWCTL_COMPLETE" in proc.stdout


@pytest.mark.parametrize(("shell", "mark"), [("zsh", "#compdef flowctl"), ("fish", "complete --command flowctl")])
def test_show_completion_prints_the_script_of_the_shell_named(shell: str, mark: str) -> None:
    # Not the one it runs under (bash here): typer's flag ignored the name and guessed.
    for args in (["--show-completion", shell], [f"--show-completion={shell}"]):
        proc = subprocess.run(
            [FLOWCTL, *args], capture_output=True, text=True, env={**os.environ, "SHELL": "/bin/bash"}
        )
        assert proc.returncode == 0 and mark in proc.stdout, proc
