"""What diners hear about their order: email after the order commits, never inside it.

With the database task queue the task row is written in the order's own transaction (a
transactional outbox: it exists exactly when the order change does, and the worker sees it
after the commit); other backends enqueue once the transaction has committed.
"""

from __future__ import annotations

from django.db import transaction
from django_tasks_db.backend import DatabaseBackend

from orders.models import Order

# The order events a diner is emailed about.
EMAILED_EVENTS = frozenset({"placed", "ready", "cancelled"})


def order_event(order: Order, event: str) -> None:
    if event not in EMAILED_EVENTS:
        return
    from orders.tasks import send_order_email

    restaurant_id, order_id = order.restaurant_id, order.pk

    def enqueue() -> None:
        send_order_email.enqueue(restaurant_id=restaurant_id, order_id=order_id, event=event)

    if isinstance(send_order_email.get_backend(), DatabaseBackend):
        enqueue()
    else:
        transaction.on_commit(enqueue)
