"""Card payments' housekeeping, run by ``manage.py run_periodic``."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from nordkestrel.periodic import periodic
from payments import inbox
from payments.models import Refund
from payments.refunds import refund_retry
from tenants.context import tenant_context
from tenants.models import Restaurant

logger = logging.getLogger(__name__)

# A refund request still in flight is left alone (the gateway gives up within about a minute).
SETTLE_AFTER = timedelta(minutes=5)
# Stripe keeps an idempotency key for 24 hours: after that, asking again could refund twice.
KEY_LIFETIME = timedelta(hours=23)


@periodic("settle-unconfirmed-refunds")
def settle_unconfirmed_refunds() -> str:
    """Refunds Stripe never confirmed (no answer came, or the request never reached it) are
    asked for again under their own key, while Stripe still knows the key: the refund staff
    asked for is made once, or found made, and recorded. Older ones are logged for a person
    to check at Stripe; they keep holding their amount."""
    now = timezone.now()
    settled = unsettled = 0
    for restaurant in Restaurant.objects.order_by("pk"):
        with tenant_context(restaurant):
            waiting = list(
                Refund.objects.filter(
                    status=Refund.Status.PENDING,
                    refund_id="",
                    created_at__lt=now - SETTLE_AFTER,
                )
                .select_related("payment")
                .order_by("created_at")
            )
        for refund in waiting:
            if refund.created_at < now - KEY_LIFETIME:
                logger.error(
                    "A refund Stripe never confirmed is past its idempotency key's lifetime: "
                    "check the payment at Stripe",
                    extra={"restaurant": restaurant.slug, "refund_key": str(refund.key)},
                )
                unsettled += 1
                continue
            refund = refund_retry(restaurant=restaurant, refund=refund)
            if refund.refund_id or refund.status != Refund.Status.PENDING:
                settled += 1
            else:
                unsettled += 1
    return f"settled {settled} unconfirmed refunds, {unsettled} still unconfirmed"


@periodic("apply-waiting-events")
def apply_waiting_events() -> str:
    """Stripe events that wait for a row not recorded when they came are applied as soon as
    the row commits (``payments.inbox``); this applies those whose wake-up never ran (the
    process writing the row stopped right after its commit). Events still without their row
    keep waiting, unprocessed."""
    applied, waiting = inbox.retry_waiting()
    return f"waiting events: {applied} applied, {waiting} still waiting"
