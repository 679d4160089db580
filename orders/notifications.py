"""What diners hear about their order: email after the order commits, never inside it."""

from __future__ import annotations

from django.db import transaction

from orders.models import Order

# The order events a diner is emailed about.
EMAILED_EVENTS = frozenset({"placed", "ready", "cancelled"})


def order_event(order: Order, event: str) -> None:
    if event not in EMAILED_EVENTS:
        return
    from orders.tasks import send_order_email

    restaurant_id, order_id = order.restaurant_id, order.pk
    transaction.on_commit(
        lambda: send_order_email.enqueue(
            restaurant_id=restaurant_id, order_id=order_id, event=event
        )
    )
