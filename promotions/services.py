"""Promotion codes: managing them, and redeeming one atomically at checkout."""

from __future__ import annotations

from django.db import connection

from customers.models import Customer
from promotions.models import Promotion, Redemption
from promotions.rules import refuse
from tenants.context import current_restaurant


def promotion_count_use(*, promotion: Promotion, customer: Customer) -> None:
    """Count one use of ``promotion`` by ``customer``, inside the checkout's transaction.

    The total cap is one conditional UPDATE (``redemption_count < max_redemptions``): under
    any concurrency a cap of N admits exactly N. The per-customer rules read the customer's
    history under the customer's row lock, which checkout already holds.
    """
    if promotion.first_order_only:
        from orders.models import Order, Status

        if Order.objects.filter(customer_id=customer.pk).exclude(status=Status.CANCELLED).exists():
            raise refuse("That code is for a first order only.", "promotion_first_order_only")
    if promotion.per_customer_limit is not None:
        used = Redemption.objects.filter(
            promotion=promotion, customer_id=customer.pk, counted=True
        ).count()
        if used >= promotion.per_customer_limit:
            raise refuse(
                "You have already used that code as often as it allows.",
                "promotion_customer_limit",
            )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Promotion._meta.db_table} SET redemption_count = redemption_count + 1
             WHERE restaurant_id = %s AND id = %s AND active
               AND (max_redemptions IS NULL OR redemption_count < max_redemptions)
            """,  # noqa: S608 - the table name is the model's, every value a parameter
            [current_restaurant().pk, promotion.pk],
        )
        if cursor.rowcount != 1:
            raise refuse("That promotion code has been used up.", "promotion_used_up")


def promotion_release(*, order_id: int) -> None:
    """A cancelled order gives its use of a code back (to the total and per-customer caps)."""
    redemption = (
        Redemption.objects.select_for_update().filter(order_id=order_id, counted=True).first()
    )
    if redemption is None:
        return
    redemption.counted = False
    redemption.save(update_fields=["counted"])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Promotion._meta.db_table} SET redemption_count = redemption_count - 1"  # noqa: S608
            " WHERE restaurant_id = %s AND id = %s AND redemption_count > 0",
            [current_restaurant().pk, redemption.promotion_id],
        )
