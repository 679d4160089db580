"""Webhook handlers for refunds, disputes and payouts (Connect events of a restaurant's
account). Each runs in the restaurant's tenant context and is safe to repeat or receive out
of order; the services in ``payments.refund_sync``, ``payments.disputes`` and
``payments.payouts`` hold the rules.

A charge, refund or dispute event whose payment is not recorded here waits for it (the
services raise ``NotYet``) instead of being marked processed with no effect; one that names
no payment at all is acknowledged as such. Payouts need no other row."""

from __future__ import annotations

from typing import Any

from payments.disputes import dispute_sync
from payments.handlers import NotYet, handles
from payments.payouts import payout_sync
from payments.refund_sync import refund_sync, refund_sync_charge


def _object(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


def _created(event: dict[str, Any]) -> int:
    created = event.get("created")
    return created if isinstance(created, int) and not isinstance(created, bool) else 0


def _id(value: Any) -> str:
    """An id given as a string, or an expanded object's id."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


@handles("charge.refunded")
def charge_refunded(event: dict[str, Any]) -> str:
    charge = _object(event)
    amount_refunded = charge.get("amount_refunded")
    if isinstance(amount_refunded, bool) or not isinstance(amount_refunded, int):
        return "no refunded amount in the charge"
    if not _id(charge.get("id")):
        return "ignored: the charge has no id"
    return refund_sync_charge(
        payment_intent_id=_id(charge.get("payment_intent")),
        charge_id=_id(charge.get("id")),
        amount_refunded=amount_refunded,
        as_of=_created(event),
    )


def _names_a_payment(obj: dict[str, Any]) -> bool:
    return bool(_id(obj.get("payment_intent")) or _id(obj.get("charge")))


@handles("refund.created", "refund.updated", "refund.failed", "charge.refund.updated")
def refund_updated(event: dict[str, Any]) -> str:
    """A refund's state; one of ours not yet settled (its answer lost or still on its way)
    is found by the key in its metadata."""
    obj = _object(event)
    try:
        return refund_sync(obj=obj, as_of=_created(event))
    except NotYet:
        if _names_a_payment(obj):
            raise
        return "ignored: no refund here has this id, and it names no payment"


@handles(
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
)
def dispute_changed(event: dict[str, Any]) -> str:
    obj = _object(event)
    if not _names_a_payment(obj):
        return "ignored: the dispute names no payment"
    return dispute_sync(obj=obj, as_of=_created(event))


@handles(
    "payout.created",
    "payout.updated",
    "payout.paid",
    "payout.failed",
    "payout.canceled",
)
def payout_changed(event: dict[str, Any]) -> str:
    return payout_sync(obj=_object(event), as_of=_created(event))
