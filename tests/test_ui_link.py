"""The Web UI link that `start` and `describe` print opens the workflow's page (headless Chromium)."""

from __future__ import annotations

import json

import pytest
from browser import CHROMIUM, rendered
from conftest import Cli, order_input, uid


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
