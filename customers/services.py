"""Customers are created by checkout (one record per email) and consent to news once they
confirm it by email. Their order stats are kept by the orders app (``orders.customer_stats``):
this app sits below orders and imports none of it."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from customers import events as customer_events
from customers.models import Customer
from nordkestrel import events
from tenants.context import current_restaurant


def normalize_email(email: str) -> str:
    return email.strip().lower()


def customer_for_checkout(
    *,
    email: str,
    name: str,
    phone: str,
    consent_requested: bool,
    now: datetime,
    counted_total: int | None = None,
) -> Customer:
    """The diner's record for this checkout: created from a first checkout, otherwise kept.

    Anyone can type any email at checkout, so a later checkout never rewrites what the record
    says: the name stays, and a phone is only filled in when the record has none (the order
    itself keeps the contact details given with it). Nor does a ticked box give consent: it
    records a request (``consent_requested_at``), which becomes consent only when the owner of
    the address confirms it from their order email (double opt-in, see
    :func:`customer_confirm_consent`). An unticked box withdraws nothing.

    One statement, which also locks the row to the end of the transaction: a diner's
    concurrent checkouts queue here, so per-customer promotion caps hold. With
    ``counted_total`` (an order placed at once, ``placed_at`` = ``now``) the same statement
    counts that order in the stats, as ``orders.customer_stats.customer_refresh_stats`` would
    recompute them: the order is written in this transaction or nothing is. A new record
    publishes ``customer.created``.
    """
    table = Customer._meta.db_table
    sql = f"""
        INSERT INTO {table} AS c (restaurant_id, email, name, phone, order_count, total_spent,
            marketing_consent, consent_at, consent_source, consent_requested_at,
            first_order_at, last_order_at, created_at, updated_at)
        VALUES (%(restaurant)s, %(email)s, %(name)s, %(phone)s, %(count)s, %(spent)s, false,
            NULL, '', CASE WHEN %(requested)s THEN %(now)s END, %(order_at)s, %(order_at)s,
            %(now)s, %(now)s)
        ON CONFLICT (restaurant_id, email) DO UPDATE SET
            phone = CASE WHEN c.phone = '' THEN EXCLUDED.phone ELSE c.phone END,
            order_count = c.order_count + EXCLUDED.order_count,
            total_spent = c.total_spent + EXCLUDED.total_spent,
            first_order_at = LEAST(c.first_order_at, EXCLUDED.first_order_at),
            last_order_at = GREATEST(c.last_order_at, EXCLUDED.last_order_at),
            consent_requested_at = CASE WHEN %(requested)s AND NOT c.marketing_consent
                                        THEN EXCLUDED.consent_requested_at
                                        ELSE c.consent_requested_at END,
            updated_at = EXCLUDED.updated_at
        RETURNING *, (xmax = 0) AS inserted
    """  # noqa: S608 - the table name is the model's, every value a parameter
    params = {
        "restaurant": current_restaurant().pk,
        "email": normalize_email(email),
        "name": name,
        "phone": phone,
        "requested": consent_requested,
        "now": now,
        "count": 0 if counted_total is None else 1,
        "spent": counted_total or 0,
        "order_at": None if counted_total is None else now,
    }
    customer = next(iter(Customer.objects.raw(sql, params)))
    # xmax is 0 on a row this statement inserted, the transaction's id on one it updated.
    if getattr(customer, "inserted", False):
        events.publish(customer_events.created(customer))
    return customer


@transaction.atomic
def customer_confirm_consent(*, customer_id: int, now: datetime) -> Customer:
    """Consent confirmed by email: the diner followed the link in their order email and said
    yes. The source stays "checkout", where it was given. Confirming again changes nothing."""
    customer = Customer.objects.select_for_update(no_key=True).get(pk=customer_id)
    if not customer.marketing_consent:
        customer.marketing_consent = True
        customer.consent_at = now
        customer.consent_source = Customer.ConsentSource.CHECKOUT
        customer.save(
            update_fields=["marketing_consent", "consent_at", "consent_source", "updated_at"]
        )
    return customer
