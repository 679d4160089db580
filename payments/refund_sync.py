"""Refunds as Stripe's webhooks report them: the charge's refunded figure
(``charge.refunded``) and each refund's fate (``refund.*``, ``charge.refund.updated``), by the
rules ``payments.refunds`` explains.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from audit import registry
from audit import services as audit
from orders.models import Order
from payments.handlers import missing_payment
from payments.models import Payment, Refund
from payments.money_common import payment_for, whole
from payments.refunds import REFUND_STATUS, held, recount, refund_learned, unconfirmed
from payments.services import STRIPE


@transaction.atomic
def refund_sync_charge(
    *, payment_intent_id: str, charge_id: str, amount_refunded: int, as_of: int
) -> str:
    """Apply a ``charge.refunded`` event: Stripe's refunded figure as of the event's
    ``created`` (absolute, and it may go down; an older event than the one applied changes
    nothing). Money refunded outside this app (Stripe's dashboard) is audited as Stripe's."""
    payment = payment_for(payment_intent_id=payment_intent_id, charge_id=charge_id)
    if payment is None:
        raise missing_payment(payment_intent_id=payment_intent_id, charge_id=charge_id)
    if charge_id and not payment.charge_id:
        payment.charge_id = charge_id
        payment.save(update_fields=["charge_id", "updated_at"])
    if as_of < payment.charge_refunded_as_of:
        return "older than the refunds already applied"
    before = payment.amount_refunded
    payment.charge_refunded = min(payment.amount, max(0, amount_refunded))
    payment.charge_refunded_as_of = as_of
    recount(payment, actor=STRIPE)
    after = payment.amount_refunded
    # Our unconfirmed refunds may be in Stripe's figure already: not news.
    if after - before > held(payment):
        audit.record(
            registry.PAYMENT_REFUNDED,
            actor=STRIPE,
            target=Order.objects.get(pk=payment.order_id),
            changes={"amount_refunded": {"before": before, "after": after}},
        )
    if after == before:
        return "refund already recorded"
    return (
        "refunded in full" if after >= payment.amount else f"refunded {after} of {payment.amount}"
    )


class RefundNotSettled(Exception):
    """A refund event that may be about a refund of ours not yet settled: raised so the
    webhook answers 5xx and Stripe delivers the event again later."""


@transaction.atomic
def refund_sync(*, obj: dict[str, Any], as_of: int) -> str:
    """A refund as its event reports it (``refund.*``, ``charge.refund.updated``).

    Found by its id, or, while we have no id for it (its request is in flight or got no
    answer), by the key in its metadata. The payment is locked first, as the refund's own
    steps lock it. A refund of ours whose fate changes (pending → succeeded, pending or
    succeeded → failed) is recounted; a failed one stays failed.
    """
    refund_id, status = _id(obj.get("id")), str(obj.get("status") or "")
    intent_id, charge_id = _id(obj.get("payment_intent")), _id(obj.get("charge"))
    failure_reason = str(obj.get("failure_reason") or "")
    payment = payment_for(payment_intent_id=intent_id, charge_id=charge_id)
    if payment is None and refund_id:
        known = Refund.objects.filter(refund_id=refund_id).values_list("payment_id").first()
        if known is not None:
            payment = Payment.objects.select_for_update(no_key=True, of=("self",)).get(pk=known[0])
    if payment is None:
        raise missing_payment(payment_intent_id=intent_id, charge_id=charge_id)
    mine = Refund.objects.select_for_update(no_key=True, of=("self",)).filter(payment=payment)
    refund = mine.filter(refund_id=refund_id).first() if refund_id else None
    if refund is None and (key := _metadata_key(obj)) is not None:
        refund = mine.filter(key=key, refund_id="").first()
    if refund is None:
        if unconfirmed(payment).exists():
            raise RefundNotSettled(
                f"Refund {refund_id} may be one of ours not settled yet; waiting for a retry."
            )
        return "not a refund made here"
    refund.payment = payment
    if not refund.refund_id:
        if refund.status != Refund.Status.PENDING:
            return "no change"
        created = whole(obj.get("created")) or as_of
        refund_learned(
            refund,
            refund_id=refund_id,
            status=status,
            created=created,
            failure_reason=failure_reason,
            as_of=as_of,
        )
        return f"refund {refund.status}"
    new_status = REFUND_STATUS.get(status)
    if new_status is None or new_status == refund.status:
        return "no change"
    if refund.status == Refund.Status.FAILED or new_status == Refund.Status.PENDING:
        return "no change"  # a failed refund stays failed; a settled one is not pending again
    refund.status = new_status
    fields = ["status"]
    if new_status == Refund.Status.FAILED:
        refund.failed_as_of = as_of
        refund.failure_message = (failure_reason or "Stripe could not refund this payment.")[:300]
        fields += ["failed_as_of", "failure_message"]
    refund.save(update_fields=fields)
    recount(payment, actor=STRIPE)
    return f"refund {new_status}"


def _id(value: Any) -> str:
    """An id given as a string, or an expanded object's id."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _metadata_key(obj: dict[str, Any]) -> uuid.UUID | None:
    metadata = obj.get("metadata")
    value = metadata.get("operation") if isinstance(metadata, dict) else None
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None
