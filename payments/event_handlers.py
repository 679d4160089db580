"""Handlers for the events of a card payment's PaymentIntent and of the connected account.

Each runs inside the restaurant's tenant context, in the transaction that marks the event
processed (``payments.inbox``), locks what it changes, and is idempotent: a repeated or
late event leaves the state the newest one described.

An intent made for one of this restaurant's orders (its metadata says so) whose Payment row
is not recorded yet waits for it (``NotYet``): ``payment_start`` asks Stripe for the intent
before it writes the row, and Stripe may report on the intent in between. An intent that no
order of this restaurant asked for is not ours and is acknowledged as such.
"""

from __future__ import annotations

import logging
from typing import Any

from nordkestrel.errors import ConflictError
from orders.services import order_cancel_unpaid
from payments import gateway
from payments.handlers import NotYet, account_key, handles, payment_key
from payments.models import Payment, StripeAccount
from payments.refunds import refund_paid_cancelled_order
from payments.services import STRIPE, payment_record_failure, payment_record_intent
from tenants.context import current_restaurant

logger = logging.getLogger(__name__)

NO_PAYMENT = "no payment of this restaurant has this PaymentIntent"


def _object(event: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = event["data"]["object"]
    return obj


def _no_payment(obj: dict[str, Any], intent: gateway.Intent) -> str:
    """What to do with an intent event that finds no payment: wait for it when one of this
    restaurant's orders asked for the intent (it is being recorded), else it is not ours."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return NO_PAYMENT
    made_here = metadata.get("restaurant_id") == str(current_restaurant().pk)
    if made_here and metadata.get("order_id"):
        raise NotYet(payment_key(intent.id), f"the payment of PaymentIntent {intent.id}")
    return NO_PAYMENT


@handles("payment_intent.succeeded", "payment_intent.processing", "payment_intent.canceled")
def payment_intent_changed(event: dict[str, Any]) -> str:
    """The intent's new state; its first success places the order (counted once, whether
    the webhook or the diner's return arrives first). A success is never undone."""
    intent = gateway.intent_from(_object(event))
    try:
        payment = payment_record_intent(payment_intent_id=intent.id, intent=intent)
    except ConflictError as error:
        if error.code != "amount_mismatch":
            raise
        # Retrying cannot fix it: acknowledged, left for a person to look at.
        logger.error(
            "PaymentIntent succeeded with an amount that does not match its order",
            extra={"event_id": event["id"], "payment_intent_id": intent.id},
        )
        return "not applied: the amount received does not match the order"
    if payment is None:
        return _no_payment(_object(event), intent)
    if payment.status == Payment.Status.CANCELED:
        # The intent can no longer be paid: the order waiting for it is cancelled for good.
        order_cancel_unpaid(
            order_id=payment.order_id, actor=STRIPE, reason="The card payment was canceled."
        )
    # Paid although its order was cancelled meanwhile (staff, expiry): the money goes back.
    refunded = refund_paid_cancelled_order(payment=payment)
    return refunded or f"payment {payment.status}"


@handles("payment_intent.payment_failed")
def payment_intent_failed(event: dict[str, Any]) -> str:
    """A declined attempt: the reason is kept for staff and the payment stays payable (the
    diner may try another card). A payment that already succeeded stays succeeded."""
    obj = _object(event)
    intent = gateway.intent_from(obj)
    payment = payment_record_intent(payment_intent_id=intent.id, intent=intent)
    if payment is None:
        return _no_payment(obj, intent)
    if payment.status == Payment.Status.SUCCEEDED:
        return "ignored: the payment already succeeded"
    if payment.status == Payment.Status.CANCELED:
        return "ignored: the payment was canceled"
    error = obj.get("last_payment_error")
    message = error.get("message") if isinstance(error, dict) else None
    payment_record_failure(payment=payment, message=str(message or "The card payment failed."))
    return "payment failed; the diner may try again"


@handles("account.updated")
def account_updated(event: dict[str, Any]) -> str:
    """The only place the connected account's flags change. An event older than the state
    already applied (Stripe does not promise order) changes nothing."""
    obj = _object(event)
    account_id = str(obj.get("id") or "")
    account = (
        StripeAccount.objects.select_for_update(no_key=True, of=("self",))
        .filter(account_id=account_id)
        .first()
    )
    if account is None:
        if account_id and account_id == (event.get("account") or account_id):
            # The event was routed here by this very account: its row is being recorded.
            raise NotYet(account_key(account_id), f"account {account_id}")
        return "no connected account of this restaurant has this id"
    created = int(event["created"])
    if created < account.state_as_of:
        return "ignored: older than the account state already applied"
    requirements = obj.get("requirements")
    if not isinstance(requirements, dict):
        requirements = {}
    due = requirements.get("currently_due")
    account.details_submitted = obj.get("details_submitted") is True
    account.charges_enabled = obj.get("charges_enabled") is True
    account.payouts_enabled = obj.get("payouts_enabled") is True
    account.requirements_due = [str(item) for item in due] if isinstance(due, list) else []
    account.disabled_reason = str(requirements.get("disabled_reason") or "")[:100]
    account.state_as_of = created
    account.save(
        update_fields=[
            "details_submitted",
            "charges_enabled",
            "payouts_enabled",
            "requirements_due",
            "disabled_reason",
            "state_as_of",
            "updated_at",
        ]
    )
    return (
        f"account updated: charges {'on' if account.charges_enabled else 'off'}, "
        f"payouts {'on' if account.payouts_enabled else 'off'}"
    )
