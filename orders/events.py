"""The order events in the catalogue, and what their payloads hold."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nordkestrel import events
from nordkestrel.events import (
    CURRENCY,
    ID,
    MINOR_UNITS,
    OPTIONAL_TIMESTAMP,
    PUBLIC_ID,
    TEXT,
    TIMESTAMP,
    enum,
    obj,
    restricted,
    timestamp,
)
from orders.models import Fulfilment, Order, PaymentMethod, Status
from promotions import events as promotion_events
from promotions.models import Redemption
from staff.roles import Scope

STATUS = enum(*Status.values)
ORDER = obj(
    id=ID,
    public_id=PUBLIC_ID,
    number=ID,
    status=STATUS,
    fulfilment=enum(*Fulfilment.values),
    payment_method=enum(*PaymentMethod.values),
    customer_id=ID,
    currency=CURRENCY,
    subtotal=MINOR_UNITS,
    discount=MINOR_UNITS,
    tax=MINOR_UNITS,
    delivery_fee=MINOR_UNITS,
    tip=MINOR_UNITS,
    total=MINOR_UNITS,
    promotion_code=TEXT,
    placed_at=OPTIONAL_TIMESTAMP,
    # When the diner was promised it; scheduled_for is set only for a chosen time (not ASAP).
    promised_at=TIMESTAMP,
    scheduled_for=OPTIONAL_TIMESTAMP,
)
# The diner's contact details as given with the order: only for readers of customers.
CONTACT = restricted(Scope.CUSTOMERS_READ, obj(name=TEXT, email=TEXT, phone=TEXT))

ORDER_PLACED = events.register(
    events.EventType(
        name="order.placed",
        version=1,
        scope=Scope.ORDERS_READ,
        schema=obj(order=ORDER, contact=CONTACT),
        description="An order reached the kitchen: at checkout, or once its card payment "
        "succeeded.",
    )
)
ORDER_STATUS_CHANGED = events.register(
    events.EventType(
        name="order.status_changed",
        version=1,
        scope=Scope.ORDERS_READ,
        schema=obj(order=ORDER, from_status=STATUS, to_status=STATUS, changed_at=TIMESTAMP),
        description="Any change of an order's status, including those with an event of their "
        "own (placed, cancelled, refunded).",
    )
)
ORDER_CANCELLED = events.register(
    events.EventType(
        name="order.cancelled",
        version=1,
        scope=Scope.ORDERS_READ,
        schema=obj(order=ORDER, from_status=STATUS, reason=TEXT, cancelled_at=TIMESTAMP),
        description="An order was cancelled by staff, or by the payment flow (unpaid, canceled "
        "payment).",
    )
)
ORDER_REFUNDED = events.register(
    events.EventType(
        name="order.refunded",
        version=1,
        scope=Scope.ORDERS_READ,
        schema=obj(order=ORDER, from_status=STATUS, refunded_at=TIMESTAMP),
        description="An order's card payment was refunded in full.",
    )
)


def order_fields(order: Order) -> dict[str, Any]:
    return {
        "id": order.pk,
        "public_id": str(order.public_id),
        "number": order.number,
        "status": str(order.status),
        "fulfilment": str(order.fulfilment),
        "payment_method": str(order.payment_method),
        "customer_id": order.customer_id,
        "currency": order.currency,
        "subtotal": order.subtotal,
        "discount": order.discount,
        "tax": order.tax,
        "delivery_fee": order.delivery_fee,
        "tip": order.tip,
        "total": order.total,
        "promotion_code": order.promotion_code,
        "placed_at": timestamp(order.placed_at),
        "promised_at": timestamp(order.promised_at),
        "scheduled_for": timestamp(order.scheduled_for),
    }


def placed(order: Order) -> events.Event:
    return ORDER_PLACED.new(
        restaurant_id=order.restaurant_id,
        occurred_at=order.placed_at,
        payload={
            "order": order_fields(order),
            "contact": {
                "name": order.contact_name,
                "email": order.contact_email,
                "phone": order.contact_phone,
            },
        },
    )


def status_changed(order: Order, *, from_status: str, at: datetime) -> events.Event:
    """``order.status_changed`` for a move to the order's current status."""
    return ORDER_STATUS_CHANGED.new(
        restaurant_id=order.restaurant_id,
        occurred_at=at,
        payload={
            "order": order_fields(order),
            "from_status": str(from_status),
            "to_status": str(order.status),
            "changed_at": timestamp(at),
        },
    )


def status_events(order: Order, *, from_status: str, at: datetime) -> list[events.Event]:
    """The events of a step of the order's way: ``order.status_changed``, and the step's own
    event when it has one."""
    moved = status_changed(order, from_status=from_status, at=at)
    fields = moved.payload["order"]
    if order.status == Status.PLACED:
        return [moved, placed(order)]
    if order.status == Status.CANCELLED:
        own = ORDER_CANCELLED.new(
            restaurant_id=order.restaurant_id,
            occurred_at=at,
            payload={
                "order": fields,
                "from_status": str(from_status),
                "reason": order.cancel_reason,
                "cancelled_at": timestamp(at),
            },
        )
        return [moved, own]
    if order.status == Status.REFUNDED:
        own = ORDER_REFUNDED.new(
            restaurant_id=order.restaurant_id,
            occurred_at=at,
            payload={
                "order": fields,
                "from_status": str(from_status),
                "refunded_at": timestamp(at),
            },
        )
        return [moved, own]
    return [moved]


def checkout_events(order: Order, redemption: Redemption | None) -> list[events.Event]:
    """What a checkout publishes besides a new customer: the order when it is placed at once
    (a card order is placed by its payment), and the code's use."""
    found = [placed(order)] if order.status == Status.PLACED else []
    if redemption is not None:
        found.append(promotion_events.redeemed(redemption))
    return found
