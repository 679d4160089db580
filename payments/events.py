"""The payment events in the catalogue."""

from __future__ import annotations

from nordkestrel import events
from nordkestrel.events import (
    CURRENCY,
    ID,
    MINOR_UNITS,
    OPTIONAL_TIMESTAMP,
    TEXT,
    enum,
    obj,
    timestamp,
)
from payments.models import Payment
from staff.roles import Scope

PAYMENT = obj(
    id=ID,
    order_id=ID,
    status=enum(*Payment.Status.values),
    amount=MINOR_UNITS,
    currency=CURRENCY,
    payment_intent_id=TEXT,
    succeeded_at=OPTIONAL_TIMESTAMP,
)

PAYMENT_SUCCEEDED = events.register(
    events.EventType(
        name="payment.succeeded",
        version=1,
        scope=Scope.ORDERS_READ,
        schema=obj(payment=PAYMENT),
        description="An order's card payment succeeded (once, however Stripe told us).",
    )
)
PAYMENT_FAILED = events.register(
    events.EventType(
        name="payment.failed",
        version=1,
        scope=Scope.ORDERS_READ,
        schema=obj(payment=PAYMENT, failure_message=TEXT),
        description="An attempt to pay an order by card was declined; the diner may try again.",
    )
)


def _payment(payment: Payment) -> dict[str, object]:
    return {
        "id": payment.pk,
        "order_id": payment.order_id,
        "status": str(payment.status),
        "amount": payment.amount,
        "currency": payment.currency,
        "payment_intent_id": payment.payment_intent_id,
        "succeeded_at": timestamp(payment.succeeded_at),
    }


def succeeded(payment: Payment) -> events.Event:
    return PAYMENT_SUCCEEDED.new(
        restaurant_id=payment.restaurant_id,
        occurred_at=payment.succeeded_at,
        payload={"payment": _payment(payment)},
    )


def failed(payment: Payment) -> events.Event:
    return PAYMENT_FAILED.new(
        restaurant_id=payment.restaurant_id,
        payload={"payment": _payment(payment), "failure_message": payment.failure_message},
    )
