"""What diners hear about their order: an email for each event of theirs that the restaurant
announces, sent by a subscriber of the order events once the order's transaction has committed.

The email is built in the restaurant's context from the order as it is now, then sent when
that context's transaction commits, so no database transaction waits on the mail provider,
and a failure reaches the event bus, which records it and tries again later.
"""

from __future__ import annotations

from functools import partial

from django.db import transaction

from nordkestrel import events
from orders.emails import order_email_for
from orders.events import ORDER_CANCELLED, ORDER_PLACED, ORDER_STATUS_CHANGED
from orders.models import Status
from orders.tasks import log_failure, send_order_message
from tenants.context import current_restaurant


def email_for_event(event: events.Event) -> str | None:
    """Which order email an event sends (None: this event sends none)."""
    if event.type == ORDER_PLACED.name:
        return "placed"
    if event.type == ORDER_CANCELLED.name:
        return "cancelled"
    if event.type == ORDER_STATUS_CHANGED.name:
        # The kitchen's step to ready (not an order put back as it was after a failed refund).
        moved = (event.payload["from_status"], event.payload["to_status"])
        return "ready" if moved == (Status.PREPARING, Status.READY) else None
    return None


@events.subscriber("orders.diner_email", ORDER_PLACED, ORDER_STATUS_CHANGED, ORDER_CANCELLED)
def email_diner(event: events.Event) -> None:
    kind = email_for_event(event)
    if kind is None:
        return
    restaurant, order_id = current_restaurant(), event.payload["order"]["id"]
    context = {"restaurant_id": restaurant.pk, "order_id": order_id, "event": kind}
    try:
        message = order_email_for(restaurant=restaurant, order_id=order_id, event=kind)
    except Exception as error:
        log_failure(error, **context)
        raise
    if message is not None:
        transaction.on_commit(partial(send_order_message, message, **context))
