"""The Web UI link that `start` and `describe` print opens the workflow's page (headless Chromium)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile

import pytest
from conftest import Cli, order_input, uid

CHROMIUM = shutil.which("chromium")
# Flags for a machine with no network but loopback (no background fetches, no sandbox as root).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=15000",
    "--dump-dom",
]


def rendered(url: str) -> str:
    assert CHROMIUM is not None
    # Chromium helpers may still write to the profile as it exits; leftovers must not fail the test.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", url], capture_output=True, text=True, timeout=120
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it where it can)")
def test_ui_link_from_start_and_describe_opens_the_workflow_page(flowctl: Cli) -> None:
    order_id = uid()
    wid = f"order-{order_id}"
    started = flowctl("start", "order", "-i", json.dumps(order_input(order_id)), "--wait", "-o", "json")
    assert started.code == 0, str(started)
    url = started.json()["ui_url"]
    assert f"/namespaces/default/workflows/{wid}/{started.json()['run_id']}/history" in url
    page = rendered(url)
    assert f"<title>Workflow History | {wid}</title>" in page
    described = flowctl("describe", wid, "-o", "json").json()["ui_url"]
    assert described == url
    assert wid in rendered(described)
