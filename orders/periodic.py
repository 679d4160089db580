"""Order housekeeping, run by ``manage.py run_periodic``."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from audit.services import SCHEDULER
from nordkestrel.periodic import periodic
from orders.models import Order, Status
from orders.services import order_cancel_unpaid
from tenants.context import tenant_context
from tenants.models import Restaurant

EXPIRED = "Not paid within {minutes} minutes."


@periodic("expire-unpaid-orders")
def expire_unpaid_orders() -> str:
    """Cancel card orders still waiting for their payment ``UNPAID_ORDER_MINUTES`` after they
    were placed: abandoned at the payment page, they would hold their pickup slot and their
    code use for ever. Each is cancelled in its own transaction (``order_cancel_unpaid``:
    slot, code use and customer counts go back); once it commits, the card payment's hook
    cancels the PaymentIntent, and a payment that still goes through is refunded.

    An order paid meanwhile is left alone (the cancellation finds it placed), so running this
    late or twice is harmless.
    """
    minutes = settings.UNPAID_ORDER_MINUTES
    cutoff = timezone.now() - timedelta(minutes=minutes)
    cancelled = 0
    for restaurant in Restaurant.objects.order_by("pk"):
        with tenant_context(restaurant):
            stale = list(
                Order.objects.filter(status=Status.PENDING_PAYMENT, created_at__lt=cutoff)
                .order_by("created_at")
                .values_list("pk", flat=True)
            )
        for order_id in stale:
            with tenant_context(restaurant):
                _, done = order_cancel_unpaid(
                    order_id=order_id, actor=SCHEDULER, reason=EXPIRED.format(minutes=minutes)
                )
            cancelled += done
    return f"cancelled {cancelled} unpaid orders"
