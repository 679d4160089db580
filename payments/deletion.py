"""The account purge's payments step: the Stripe account is closed and forgotten.

Runs once per purge, before the restaurant's rows are deleted (restaurants/purge.py): the
connected account is marked disconnected and its webhook route removed, so no later event is
applied; Stripe is asked to delete the account; the stored webhook events of the restaurant
(their payloads hold diners' and staff's details) are deleted.

Stripe being down never holds the purge up (the data goes within the promised 30 days): the
account's closure is recorded as pending (``"pending: ..."`` in the deletion record, its id
listed under ``pending``) and :func:`retry_account_closures` asks Stripe again on every later
run until it answers.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import Q
from django.utils import timezone

from payments import gateway
from payments.models import AccountRoute, StripeAccount, WebhookEvent
from restaurants.purge import BATCH_SIZE, PENDING, register_follow_up, register_step
from tenants.context import tenant_context
from tenants.models import Restaurant

logger = logging.getLogger(__name__)


def _transient(error: gateway.GatewayError) -> bool:
    """Stripe unreachable or failing for now (the SDK has already retried)."""
    if error.status is None:
        return error.code != "stripe_not_configured"
    return error.status == 429 or error.status >= 500


def _close(account_id: str) -> tuple[str, bool]:
    """Ask Stripe to delete the account: (what happened, whether to ask again later)."""
    try:
        return gateway.close_account(account_id=account_id), False
    except gateway.GatewayError as error:
        if _transient(error):
            # Later runs ask Stripe again; the purge goes on meanwhile.
            logger.warning(
                "Stripe account %s of a purged restaurant not closed yet (retried later): %s",
                account_id,
                error.detail,
            )
            return f"pending: {error.detail}"[:200], True
        # A refusal: the purge goes on (its deadline is the security page's promise), and the
        # platform's operators close the account by hand, e.g. once its balance is paid out.
        logger.warning(
            "Stripe account %s of a purged restaurant was not closed: %s",
            account_id,
            error.detail,
        )
        return f"not closed: {error.detail}"[:200], False


def _closures(outcome: dict[str, Any], account_ids: list[str]) -> dict[str, Any]:
    """``outcome`` with the closure of each of ``account_ids`` asked for (again)."""
    closures = dict(outcome.get("stripe_accounts", {}))
    pending = []
    for account_id in account_ids:
        closures[account_id], again = _close(account_id)
        if again:
            pending.append(account_id)
    updated = {key: value for key, value in outcome.items() if key != PENDING}
    updated["stripe_accounts"] = closures
    if pending:
        updated[PENDING] = pending
    return updated


def _delete_webhook_events(restaurant: Restaurant, account_ids: list[str]) -> int:
    """The events routed to the restaurant and those naming its accounts that were never
    routed: row-level security shows exactly those (and other unrouted ones) in its context,
    one batch per transaction."""
    events = WebhookEvent.objects.filter(Q(restaurant=restaurant) | Q(account_id__in=account_ids))
    deleted = 0
    while True:
        with tenant_context(restaurant):
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
    outcome = _closures({}, account_ids)
    outcome["webhook_events_deleted"] = _delete_webhook_events(restaurant, account_ids)
    return outcome


@register_follow_up("payments")
def retry_account_closures(outcome: dict[str, Any]) -> dict[str, Any]:
    """Ask Stripe again to delete the accounts whose closure is pending (their ids are in the
    outcome: the restaurant's rows are gone by now)."""
    return _closures(outcome, [str(account_id) for account_id in outcome.get(PENDING, [])])
