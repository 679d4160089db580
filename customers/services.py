"""Customers are written by checkout (one record per email) and refreshed from orders."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from customers.models import Customer
from tenants.context import current_restaurant


def normalize_email(email: str) -> str:
    return email.strip().lower()


def customer_for_checkout(
    *, email: str, name: str, phone: str, marketing_consent: bool, now: datetime
) -> Customer:
    """The diner's record, created or updated with the details of this checkout.

    One statement, which also locks the row to the end of the transaction: a diner's
    concurrent checkouts queue here, so per-customer promotion caps hold. Consent is only
    ever added here (an unticked box is no withdrawal); its time and source are kept.
    """
    table = Customer._meta.db_table
    sql = f"""
        INSERT INTO {table} AS c (restaurant_id, email, name, phone, order_count, total_spent,
            marketing_consent, consent_at, consent_source, created_at, updated_at)
        VALUES (%(restaurant)s, %(email)s, %(name)s, %(phone)s, 0, 0, %(consent)s,
            CASE WHEN %(consent)s THEN %(now)s END,
            CASE WHEN %(consent)s THEN %(source)s ELSE '' END, %(now)s, %(now)s)
        ON CONFLICT (restaurant_id, email) DO UPDATE SET
            name = EXCLUDED.name,
            phone = CASE WHEN EXCLUDED.phone <> '' THEN EXCLUDED.phone ELSE c.phone END,
            marketing_consent = c.marketing_consent OR EXCLUDED.marketing_consent,
            consent_at = CASE WHEN c.marketing_consent THEN c.consent_at
                              ELSE EXCLUDED.consent_at END,
            consent_source = CASE WHEN c.marketing_consent THEN c.consent_source
                                  ELSE EXCLUDED.consent_source END,
            updated_at = EXCLUDED.updated_at
        RETURNING *
    """  # noqa: S608 - the table name is the model's, every value a parameter
    params = {
        "restaurant": current_restaurant().pk,
        "email": normalize_email(email),
        "name": name,
        "phone": phone,
        "consent": marketing_consent,
        "now": now,
        "source": Customer.ConsentSource.CHECKOUT.value,
    }
    return next(iter(Customer.objects.raw(sql, params)))


def customer_refresh_stats(customer_id: int) -> None:
    """Order count, total spent and first/last order, recomputed from the customer's orders
    that were placed and not cancelled (one statement)."""
    from orders.models import COUNTED_STATUSES, Order

    with connection.cursor() as cursor:
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
