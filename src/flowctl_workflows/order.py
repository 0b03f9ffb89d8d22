"""The `order` kind: reserve → charge → fraud review if large → ship → confirm, as a saga."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from . import attributes
    from .models import POLICY_APART, Decision, FlowState
    from .models.order import ORDER_POLICY, OrderInput, OrderOutcome, OrderPolicy, OrderResult
    from .services import commands as c

from .flow import Cancelled, Flow, Undo, Waiting, failure_reason


def UNDOES(key: Callable[[str], str]) -> dict[str, Undo]:  # noqa: N802 - a table, spelled as one
    """Each undoable step of an order and its compensation."""
    return {
        "reserve_inventory": (
            "release_inventory",
            c.INVENTORY_RELEASE,
            c.ReleaseInventory(reservation_key=key("reserve_inventory")),
        ),
        "charge_payment": ("refund_payment", c.PAYMENT_REFUND, c.RefundPayment(charge_key=key("charge_payment"))),
        "create_shipment": (
            "cancel_shipment",
            c.SHIPPING_CANCEL,
            c.CancelShipment(shipment_key=key("create_shipment")),
        ),
    }


@workflow.defn(name="Order")
class OrderWorkflow:
    @workflow.init
    def __init__(self, order: OrderInput) -> None:
        self._flow = Flow("order")
        self._decision: Decision | None = None

    @workflow.run
    async def run(self, order: OrderInput) -> OrderResult:
        flow = self._flow
        flow.begin(UNDOES)
        try:
            lines = [c.Line.model_validate(item.model_dump()) for item in order.items]
            await flow.step(
                "reserve_inventory", c.INVENTORY_RESERVE, c.ReserveInventory(order_id=order.order_id, items=lines)
            )
            charge = c.ChargePayment(
                order_id=order.order_id, customer_id=order.customer_id, amount_cents=order.total_cents, card=order.card
            )
            await flow.step("charge_payment", c.PAYMENT_CHARGE, charge)
            screen = await flow.step(
                "fraud_screen",
                c.FRAUD_SCREEN,
                c.ScreenOrder(order_id=order.order_id, customer_id=order.customer_id, total_cents=order.total_cents),
            )
            if screen.review:
                decision = await self._await_review(await self._review_timeout(screen))
                if decision.decision == "reject":
                    reason = f"rejected in fraud review by {decision.reviewer}"
                    if decision.comment:
                        reason += f": {decision.comment}"
                    await flow.compensate()
                    return self._result(order, "rejected", reason)
            await flow.step(
                "create_shipment",
                c.SHIPPING_CREATE,
                c.CreateShipment(order_id=order.order_id, address=order.shipping_address),
            )
            confirmation = c.SendEmail(
                to=order.email,
                template="order_confirmation",
                subject=f"Order {order.order_id} is on its way",
                ref=order.order_id,
            )
            await flow.step("send_confirmation", c.EMAIL_SEND, confirmation)
        except ActivityError as err:
            reason = f"{flow.state.step} failed: {failure_reason(err)}"
            await flow.compensate()
            return self._result(order, "compensated", reason)
        except Cancelled:
            raise
        except asyncio.CancelledError:
            if not flow.settled:
                flow.state.reason = "cancelled"
                await flow.compensate()
                flow.finish("cancelled", "cancelled")
                raise
            flow.undo_everything()  # a cancelled order keeps nothing, and can have nothing done later
            await flow.compensate()
            return self._result(order, "cancelled", None)
        return self._result(order, "completed", None)

    async def _review_timeout(self, screen: c.Screening) -> timedelta:
        """How long a fraud review may take: the worker's policy, read when a review is needed.

        Runs from before POLICY_APART read it from the screen's answer, where the worker put it."""
        if not workflow.patched(POLICY_APART):
            return timedelta(seconds=float((screen.model_extra or {})["review_timeout_seconds"]))
        policy = await workflow.execute_local_activity(
            ORDER_POLICY, result_type=OrderPolicy, start_to_close_timeout=timedelta(seconds=10)
        )
        return timedelta(seconds=policy.review_timeout_seconds)

    async def _await_review(self, timeout: timedelta) -> Decision:
        """Hold the order for a fraud decision; no decision within `timeout` rejects it."""
        flow = self._flow
        flow.state.step = "fraud_review"
        waiting = Waiting(
            "fraud review decision (signal 'review')",
            attributes.REVIEW,
            within=timeout,
            then="rejected: no review decision",
        )
        flow.set_status("awaiting_review", waiting)
        try:
            await workflow.wait_condition(lambda: self._decision is not None, timeout=timeout)
        except TimeoutError:
            self._decision = Decision(
                decision="reject", reviewer="timeout", comment=f"no decision within {int(timeout.total_seconds())}s"
            )
        finally:
            flow.set_status("running", None)
        flow.state.completed_steps.append("fraud_review")
        assert self._decision is not None
        return self._decision

    def _result(self, order: OrderInput, outcome: OrderOutcome, reason: str | None) -> OrderResult:
        """Finish with `outcome`; a cancelled run raises instead, keeping this result in its memo."""
        flow = self._flow
        outcome, reason = flow.concluded(outcome, reason)  # type: ignore[assignment]
        if flow.compensation_failed:
            failed = [c.action for c in flow.state.compensations if c.state == "failed"]
            reason = f"{reason}; compensation failed: {', '.join(failed)}"
        flow.finish(outcome, reason)
        charge = flow.answers.get("charge_payment")
        shipment = flow.answers.get("create_shipment")
        result = OrderResult(
            order_id=order.order_id,
            outcome=outcome,
            succeeded=outcome == "completed",
            reason=reason,
            total_cents=order.total_cents,
            charge_id=charge.charge_id if isinstance(charge, c.Charge) else None,
            shipment_id=shipment.shipment_id if isinstance(shipment, c.Shipment) else None,
            reviewed_by=self._decision.reviewer if self._decision else None,
            compensations=flow.state.compensations,
        )
        if outcome == "cancelled":
            raise flow.end_cancelled(result)
        return result

    @workflow.signal(name="review")
    def review(self, decision: Decision) -> None:
        """A fraud reviewer's decision; the first one counts."""
        if self._decision is None:
            self._decision = decision

    @workflow.query(name="status")
    def status(self) -> FlowState:
        return self._flow.state
