"""The order's long timer, tested in seconds on the time-skipping test server."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from flowctl import searchattrs
from flowctl_workflows import activities
from flowctl_workflows.models.order import OrderInput, OrderItem
from flowctl_workflows.order import OrderWorkflow
from flowctl_workflows.services.local import LocalServices, read_ledger

TEST_SERVER = str(Path(sys.executable).parent / "temporal-test-server")


def test_no_review_decision_within_a_day_rejects_and_refunds(tmp_path: Path) -> None:
    async def scenario() -> None:
        services = LocalServices(tmp_path / "ledger.db")
        async with await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=TEST_SERVER, data_converter=pydantic_data_converter
        ) as env:
            assert await searchattrs.register(env.client)  # the test server starts with none
            async with Worker(
                env.client,
                task_queue="timers",
                workflows=[OrderWorkflow],
                activities=activities.build(services, review_timeout_seconds=24 * 3600),
            ):
                order = OrderInput(
                    order_id="big-1",
                    customer_id="c",
                    email="a@example.com",
                    items=[OrderItem(sku="SKU-1", quantity=1, unit_price=5000)],
                )
                started = asyncio.get_running_loop().time()
                result = await env.client.execute_workflow(
                    OrderWorkflow.run, order, id="order-big-1", task_queue="timers"
                )
                assert asyncio.get_running_loop().time() - started < 60  # a day, skipped
        assert result.outcome == "rejected" and result.reviewed_by == "timeout"
        assert "no decision within 86400s" in (result.reason or "")
        ledger = read_ledger(tmp_path / "ledger.db")
        assert [c["status"] for c in ledger["charges"]] == ["refunded"]
        assert [r["status"] for r in ledger["reservations"]] == ["released"]

    asyncio.run(scenario())
