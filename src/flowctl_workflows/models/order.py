"""Input and result of the `order` kind."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from flowctl_workflows.services import DECLINED_CARD, FLAKY_CARD

from . import Compensation, Money

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class OrderItem(BaseModel):
    """One line of an order."""

    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="stock keeping unit")
    quantity: int = Field(gt=0, le=10_000, description="units, at least 1")
    unit_price: Money = Field(
        ge=0, le=1_000_000, allow_inf_nan=False, description="price of one unit, at most two decimals"
    )


class OrderInput(BaseModel):
    """An order to reserve, charge, review if large, ship and confirm."""

    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(pattern=ID_PATTERN, description="business key; the workflow id is order-{order_id}")
    customer_id: str = Field(min_length=1, max_length=100)
    email: str = Field(pattern=EMAIL_PATTERN, max_length=254, description="where the confirmation goes")
    items: list[OrderItem] = Field(min_length=1, max_length=100)
    card: str = Field(
        default="tok_visa",
        min_length=1,
        max_length=64,
        description=f"payment token; {DECLINED_CARD!r} is declined, {FLAKY_CARD!r} fails twice before it succeeds",
    )
    shipping_address: str = Field(default="1 Main Street, Springfield", min_length=1, max_length=500)

    @property
    def total_cents(self) -> int:
        return sum(round(item.unit_price * 100) * item.quantity for item in self.items)


OrderOutcome = Literal["completed", "compensated", "rejected", "cancelled"]


class OrderResult(BaseModel):
    """How an order ended. `succeeded` is false for a compensated or rejected order.

    `charge_id` and `shipment_id` name what was taken even when a compensation undid it
    (see `compensations`), so the ledger's refund can be matched to its charge.
    """

    order_id: str
    outcome: OrderOutcome
    succeeded: bool
    reason: str | None = None
    total_cents: int
    charge_id: str | None = None
    shipment_id: str | None = None
    reviewed_by: str | None = None
    compensations: list[Compensation] = Field(default_factory=list)


EXAMPLE: dict[str, object] = {
    "order_id": "A-1001",
    "customer_id": "cust-42",
    "email": "ada@example.com",
    "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": 12.5}],
    "card": "tok_visa",
}

# What the catalog (flowctl_workflows.kinds) loads for this kind.
INPUT = OrderInput
RESULT = OrderResult


ORDER_POLICY = "flowctl.order_policy"  # the activity that answers the worker's OrderPolicy


class OrderPolicy(BaseModel):
    """How the worker's settings (`order.*`) want orders run: read by the workflow when it
    needs them, through an activity, so the history records what a run used."""

    review_timeout_seconds: float = Field(gt=0, description="how long a fraud review may take")
