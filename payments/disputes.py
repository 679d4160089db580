"""Disputes (chargebacks) as Stripe's webhooks report them, on the payment's order: the
newest event wins, a closed dispute stays closed, opening and closing are audited. What the
restaurant can answer with is ``payments.evidence``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from audit import registry
from audit import services as audit
from orders.models import Order
from payments.handlers import missing_payment
from payments.models import Dispute
from payments.money_common import epoch, payment_for, whole
from payments.services import STRIPE

DISPUTE_CLOSED = frozenset({"won", "lost", "warning_closed", "prevented", "charge_refunded"})


def _dispute_label(dispute: Dispute, order: Order) -> str:
    return f"{dispute.dispute_id} ({order})"


@transaction.atomic
def dispute_sync(*, obj: dict[str, Any], as_of: int) -> str:
    """Record a dispute (chargeback) as a webhook reports it, on the payment's order.

    The newest event wins; a closed dispute stays closed (a late "created" never reopens
    it). Audited when first recorded and when it closes, with the outcome.
    """
    dispute_id = str(obj.get("id") or "")
    if not dispute_id:
        return "no dispute id"
    charge = obj.get("charge")
    charge_id = str(charge.get("id") if isinstance(charge, dict) else charge or "")
    intent = obj.get("payment_intent")
    intent_id = str(intent.get("id") if isinstance(intent, dict) else intent or "")
    payment = payment_for(payment_intent_id=intent_id, charge_id=charge_id)
    if payment is None:
        raise missing_payment(payment_intent_id=intent_id, charge_id=charge_id)
    status = str(obj.get("status") or "")[:40]
    evidence = obj.get("evidence_details")
    fields: dict[str, Any] = {
        "amount": whole(obj.get("amount")),
        "currency": str(obj.get("currency") or payment.currency).upper()[:3],
        "reason": str(obj.get("reason") or "")[:64],
        "status": status,
        "evidence_due_by": epoch(evidence.get("due_by")) if isinstance(evidence, dict) else None,
        "state_as_of": as_of,
    }
    closing = status in DISPUTE_CLOSED
    dispute = (
        Dispute.objects.select_for_update(no_key=True, of=("self",))
        .filter(dispute_id=dispute_id)
        .first()
    )
    order = Order.objects.get(pk=payment.order_id)
    if dispute is None:
        dispute = Dispute.objects.create(
            payment=payment,
            dispute_id=dispute_id,
            opened_at=epoch(obj.get("created")) or epoch(as_of) or datetime.now(UTC),
            closed_at=(epoch(as_of) or datetime.now(UTC)) if closing else None,
            **fields,
        )
        audit.record(
            registry.PAYMENT_DISPUTE_OPENED,
            actor=STRIPE,
            target=dispute,
            target_label=_dispute_label(dispute, order),
            changes={
                "amount": {"before": None, "after": dispute.amount},
                "reason": {"before": None, "after": dispute.reason},
                "status": {"before": None, "after": dispute.status},
            },
        )
        if closing:
            _dispute_closed(dispute, order, before="")
        return f"dispute {status}"
    if dispute.closed_at is not None and not closing:
        return "the dispute is closed already"
    if as_of < dispute.state_as_of:
        return "older than the dispute's recorded state"
    before = dispute.status
    was_open = dispute.closed_at is None
    for name, value in fields.items():
        setattr(dispute, name, value)
    if closing and was_open:
        dispute.closed_at = epoch(as_of) or datetime.now(UTC)
    dispute.save()
    if closing and was_open:
        _dispute_closed(dispute, order, before=before)
    return f"dispute {status}"


def _dispute_closed(dispute: Dispute, order: Order, *, before: str) -> None:
    audit.record(
        registry.PAYMENT_DISPUTE_CLOSED,
        actor=STRIPE,
        target=dispute,
        target_label=_dispute_label(dispute, order),
        changes={"status": {"before": before or None, "after": dispute.status}},
    )
