"""The account purge's payments step: the Stripe account is closed and forgotten.

Runs once per purge, before the restaurant's rows are deleted (tenants/purge.py): the
connected account is marked disconnected and its webhook route removed, so no later event is
applied; Stripe is asked to delete the account; the stored webhook events of the restaurant
(their payloads hold diners' and staff's details) are deleted.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from payments import gateway
from payments.models import AccountRoute, StripeAccount, WebhookEvent
from tenants.context import tenant_context
from tenants.models import Restaurant
from tenants.purge import BATCH_SIZE, register_step

logger = logging.getLogger(__name__)


def _transient(error: gateway.GatewayError) -> bool:
    """Stripe unreachable or failing for now (the SDK has already retried)."""
    if error.status is None:
        return error.code != "stripe_not_configured"
    return error.status == 429 or error.status >= 500


def _close(account_id: str) -> str:
    try:
        return gateway.close_account(account_id=account_id)
    except gateway.GatewayError as error:
        if _transient(error):
            # The purge stops before any row is deleted; the next run asks Stripe again.
            raise
        # A refusal: the purge goes on (its deadline is the security page's promise), and the
        # platform's operators close the account by hand, e.g. once its balance is paid out.
        logger.warning(
            "Stripe account %s of a purged restaurant was not closed: %s",
            account_id,
            error.detail,
        )
        return f"not closed: {error.detail}"[:200]


def _delete_webhook_events(restaurant: Restaurant, account_ids: list[str]) -> int:
    events = WebhookEvent.objects.filter(Q(restaurant=restaurant) | Q(account_id__in=account_ids))
    deleted = 0
    while True:
        with transaction.atomic():
            batch = list(events.order_by("pk").values_list("pk", flat=True)[:BATCH_SIZE])
            if not batch:
                return deleted
            deleted += WebhookEvent.objects.filter(pk__in=batch).delete()[0]


@register_step("payments")
def close_payment_accounts(restaurant: Restaurant) -> dict[str, Any]:
    with tenant_context(restaurant):
        account_ids = list(
            StripeAccount.objects.order_by("pk").values_list("account_id", flat=True)
        )
        StripeAccount.objects.filter(disconnected_at__isnull=True).update(
            disconnected_at=timezone.now()
        )
        AccountRoute.objects.filter(
            Q(restaurant=restaurant) | Q(account_id__in=account_ids)
        ).delete()
    closures = {account_id: _close(account_id) for account_id in account_ids}
    return {
        "stripe_accounts": closures,
        "webhook_events_deleted": _delete_webhook_events(restaurant, account_ids),
    }
