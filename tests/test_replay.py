"""Replay safety: every recorded history must replay against the current workflow code.

A change that would break running workflows (reordered steps, a removed activity, a new
command without `workflow.patched`) fails here. Record new paths with `make record-histories`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from record_histories import HISTORIES, SCENARIOS
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from flowctl import worker
from flowctl.connect import data_converter
from flowctl_workflows.kinds import KINDS

RECORDED = sorted(HISTORIES.glob("*.json"))


def test_every_kind_and_major_path_has_a_recorded_history() -> None:
    missing = set(SCENARIOS) - {path.stem for path in RECORDED}
    assert not missing, f"run 'make record-histories' to record {sorted(missing)}"
    for kind in KINDS:
        assert any(path.stem.startswith(f"{kind}-") for path in RECORDED), kind


@pytest.mark.parametrize("path", RECORDED, ids=lambda path: path.stem)
def test_recorded_history_replays_on_current_code(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())  # the file is named by workflow id
    replayer = Replayer(workflows=worker.workflow_classes(), data_converter=data_converter())
    result = asyncio.run(replayer.replay_workflow(history, raise_on_replay_failure=False))
    assert result.replay_failure is None, f"{path.stem}: {result.replay_failure}"
