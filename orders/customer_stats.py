"""A customer's order stats (count, total spent, first and last order), kept by the orders
that make them.

Checkout counts an order placed at once in the customer upsert itself
(``customers.services.customer_for_checkout`` with ``counted_total``); every later change
that moves an order into or out of the counted statuses (a card payment, a cancellation, a
refund and its reversal) recounts here, in the order's transaction.
"""

from __future__ import annotations

from django.db import connection

from customers.models import Customer
from orders.models import COUNTED_STATUSES, Order
from tenants.context import current_restaurant


def customer_refresh_stats(customer_id: int) -> None:
    """Order count, total spent and first/last order, recomputed from the customer's orders
    that were placed and not cancelled.

    The row is locked first and the orders read by a second statement: a checkout of the same
    diner holds the row until it commits (``customer_for_checkout``), so the recount waits
    for it and then sees its order. Counting in the same statement as the wait would read the
    orders as they were before it and write back a count one short."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {Customer._meta.db_table} WHERE restaurant_id = %s AND id = %s "  # noqa: S608 - the model's table
            "FOR NO KEY UPDATE",
            [current_restaurant().pk, customer_id],
        )
        cursor.execute(
            f"""
            UPDATE {Customer._meta.db_table} AS c SET
                order_count = s.n, total_spent = s.spent,
                first_order_at = s.first_at, last_order_at = s.last_at
            FROM (SELECT count(*) AS n, coalesce(sum(total), 0) AS spent,
                         min(placed_at) AS first_at, max(placed_at) AS last_at
                    FROM {Order._meta.db_table}
                   WHERE restaurant_id = %s AND customer_id = %s AND status = ANY(%s)) AS s
            WHERE c.restaurant_id = %s AND c.id = %s
            """,  # noqa: S608 - table names are the models', every value a parameter
            [
                current_restaurant().pk,
                customer_id,
                [str(s) for s in COUNTED_STATUSES],
                current_restaurant().pk,
                customer_id,
            ],
        )
