"""Order housekeeping, run by ``manage.py run_periodic``."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from audit.services import SCHEDULER
from nordkestrel.periodic import periodic
from orders import payment_methods
from orders.models import Order, Status
from orders.services import order_cancel_unpaid
from tenants.context import tenant_context
from tenants.models import Restaurant

EXPIRED = "Not paid within {minutes} minutes."


def _verdict(order: Order) -> str:
    """What the order's payment method says may be done with it ("cancel", "paid", "wait")."""
    settle = getattr(payment_methods.get(order.payment_method), "settle_unpaid", None)
    return "cancel" if settle is None else str(settle(order))


@periodic("expire-unpaid-orders")
def expire_unpaid_orders() -> str:
    """Cancel card orders still waiting for their payment ``UNPAID_ORDER_MINUTES`` after they
    were placed: abandoned at the payment page, they would hold their pickup slot and their
    code use for ever.

    The payment method is asked first (outside any transaction), since our record may lag
    behind Stripe's (a lost webhook, a diner who paid and never came back): a payment that
    went through places the order instead, one under way or that Stripe cannot tell us about
    now is left for a later run, and otherwise the method stops the payment (the card
    payment cancels its PaymentIntent) before the order is cancelled, each in its own
    transaction (``order_cancel_unpaid``: slot, code use and customer counts go back).

    An order placed meanwhile is left alone (the cancellation finds it placed), so running
    this late or twice is harmless.
    """
    minutes = settings.UNPAID_ORDER_MINUTES
    cutoff = timezone.now() - timedelta(minutes=minutes)
    counts: Counter[str] = Counter()
    for restaurant in Restaurant.objects.order_by("pk"):
        with tenant_context(restaurant):
            stale = list(
                Order.objects.filter(status=Status.PENDING_PAYMENT, created_at__lt=cutoff).order_by(
                    "created_at"
                )
            )
        for order in stale:
            verdict = _verdict(order)
            if verdict != "cancel":
                counts[verdict] += 1
                continue
            with tenant_context(restaurant):
                _, done = order_cancel_unpaid(
                    order_id=order.pk, actor=SCHEDULER, reason=EXPIRED.format(minutes=minutes)
                )
            counts["cancel"] += done
    return (
        f"cancelled {counts['cancel']} unpaid orders, {counts['paid']} found paid, "
        f"{counts['wait']} left for a later run"
    )
