"""The contract between the workflows and the services (`services/commands.py`), held on both
sides of every call: what the workflows send is the command's request, and an answer outside
the command's answer model fails the step at once (a retry would get the same), naming the
field, and the saga undoes what was done."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from timeskip import time_skipping

from flowctl_workflows.services import Bridge
from flowctl_workflows.services.commands import COMMANDS
from flowctl_workflows.services.local import LocalServices, read_ledger

ORDER = {"order_id": "k-1", "customer_id": "c", "email": "a@example.com",
         "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 12}]}  # fmt: skip


class Recording:
    """The local services, seen from the wire: every request as sent; one command's answer altered."""

    def __init__(self, local: LocalServices, alter: dict[str, Any] | None = None) -> None:
        self.local, self.alter = local, alter or {}
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def call(self, command: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.sent.append((command, payload))
        answer = await self.local.call(command, payload)
        if command in self.alter:
            return self.alter[command](answer)  # type: ignore[no-any-return]
        return answer

    async def close(self) -> None:
        await self.local.close()


def run_order(tmp_path: Path, alter: dict[str, Any] | None = None) -> tuple[dict[str, Any], Recording]:
    seen: list[Recording] = []

    def bridge(local: LocalServices) -> Bridge:
        seen.append(Recording(local, alter))
        return seen[-1]

    async def scenario() -> dict[str, Any]:
        async with time_skipping(tmp_path / "ledger.db", bridge=bridge) as env:
            return await (await env.start("order", ORDER)).result()  # type: ignore[no-any-return]

    return asyncio.run(scenario()), seen[0]


def test_every_request_sent_is_its_commands_request_with_the_steps_key(tmp_path: Path) -> None:
    result, wire = run_order(tmp_path)
    assert result["outcome"] == "completed"
    sent = {command for command, _ in wire.sent}
    assert sent == {"inventory.reserve", "payment.charge", "fraud.screen", "shipping.create", "email.send"}
    for command, payload in wire.sent:
        COMMANDS[command].request.model_validate(payload)  # exactly its fields: the model forbids others
        assert payload["idempotency_key"].startswith("order-k-1/"), payload


def test_an_answer_outside_the_contract_fails_the_step_at_once_and_is_undone(tmp_path: Path) -> None:
    def lose_the_charge_id(answer: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in answer.items() if k != "charge_id"}

    result, wire = run_order(tmp_path, {"payment.charge": lose_the_charge_id})
    assert result["outcome"] == "compensated", result
    assert "payment.charge answered outside its contract: charge_id: Field required" in result["reason"]
    charges = [command for command, _ in wire.sent if command == "payment.charge"]
    assert len(charges) == 1  # not retried: the same answer would come back
    ledger = read_ledger(tmp_path / "ledger.db")
    assert [c["status"] for c in ledger["charges"]] == ["refunded"]  # the refund is by the step's key
    assert [r["status"] for r in ledger["reservations"]] == ["released"]
