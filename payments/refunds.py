"""Refunds: made at staff's request in three steps that never refund twice, the amount
Stripe counts as refunded (which the order's status follows), the automatic refund of an order
cancelled before its payment went through, and reading an order's refunds.

Stripe's webhooks about refunds are applied by ``refund_sync``, by the same rules.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Sum

from audit import registry
from audit import services as audit
from audit.services import SystemActor
from nordkestrel.errors import ConflictError, InvalidInput, NotFoundError
from nordkestrel.text import storable
from orders.models import Order, Status
from orders.services import order_mark_refunded, order_unmark_refunded
from payments import gateway
from payments.models import Payment, Refund
from payments.money_common import ProviderError, amount_of, major, operation, provider_error
from payments.services import STRIPE
from staff.auth import Actor
from staff.roles import Scope
from tenants.context import tenant_context
from tenants.models import Restaurant

logger = logging.getLogger(__name__)

REASON_MAX = 300

# A refund is made in three steps, so that a retried request never refunds twice and Stripe is
# never called with a row lock held:
#
# 1. Reserve (one transaction, the payment locked): the caller's operation id gives the
#    refund's key (per restaurant); a key seen before replays its refund. Otherwise what remains
#    is checked and a pending refund row without ``refund_id`` is written and committed: it
#    holds its amount against concurrent refunds from now on.
# 2. Ask Stripe (no transaction, no lock), with the key as the idempotency key and in the
#    refund's metadata.
# 3. Settle (one transaction, the payment locked): Stripe's answer is recorded, unless a webhook
#    recorded the refund first. A definite refusal (4xx) fails the refund; no answer (a timeout,
#    a 5xx, the key still in use, a rate limit) leaves it unconfirmed: still pending, still
#    holding its amount, settled later by its webhook (which names the key), by a retry of the
#    same operation or by the ``settle-unconfirmed-refunds`` periodic job (Stripe replays its
#    answer under the same key; nothing is refunded twice).
#
# The steps commit on their own, so the refund API view and the order page's refund form run
# outside the request's transaction (``atomic_request = False``): an error answer does not
# undo a reservation that Stripe may already have acted on.
#
# What is refunded follows Stripe's own figure, the charge's ``amount_refunded``, which counts
# a refund from the moment Stripe creates it (pending or not) and drops it again if it fails.
# ``Payment.amount_refunded`` is that figure as we know it now: the newest ``charge.refunded``
# event's amount (``charge_refunded``, as of the event's ``created``, ``t``), plus our refunds
# Stripe created after ``t`` that have not failed, less our refunds the event counted that
# failed since (a failure at ``t`` or later). Stripe's times are whole seconds: a refund created
# in the event's second is taken as counted by it, and a failure in that second as not yet
# reflected in it; the next charge event settles any doubt. An order whose figure reaches the
# amount paid is refunded; if a failure brings it back below, the order returns to the status it
# had. What remains to refund is the amount paid, less that figure, less our unconfirmed refunds
# (reserved, not yet known to be at Stripe). An unconfirmed refund that Stripe did make may be
# in a charge event's amount already: until it is settled, what remains reads low, never high.

# Refund keys are uuid5(this namespace, "<restaurant id>:<operation id>").
REFUND_KEYS = uuid.UUID("1b7e1d2c-4f0a-5a8e-9c3d-6f2b8a0e4d71")


def refund_key(restaurant_id: int, operation_id: str) -> uuid.UUID:
    return uuid.uuid5(REFUND_KEYS, f"{restaurant_id}:{operation_id}")


class RefundUnconfirmed(ProviderError):
    code = "refund_unconfirmed"


UNCONFIRMED = (
    "Stripe did not confirm the refund in time; it may have been made. It stays pending and "
    "holds its amount until Stripe tells us; sending the same request again (the same "
    "Idempotency-Key) asks Stripe again and never refunds twice."
)


def unconfirmed(payment: Payment) -> models.QuerySet[Refund]:
    """Our refunds of the payment that Stripe has not confirmed (reserved, no id yet)."""
    return Refund.objects.filter(payment=payment, status=Refund.Status.PENDING, refund_id="")


def held(payment: Payment) -> int:
    """What our unconfirmed refunds hold of the payment."""
    return int(unconfirmed(payment).aggregate(total=Sum("amount"))["total"] or 0)


def refund_remaining(payment: Payment) -> int:
    """What can still be refunded: the amount paid less Stripe's refunded figure and less
    our refunds Stripe has not confirmed yet."""
    if payment.status != Payment.Status.SUCCEEDED:
        return 0
    return max(0, payment.amount - payment.amount_refunded - held(payment))


def _charge_figure(payment: Payment, refunds: list[Refund]) -> int:
    """The charge's ``amount_refunded`` as we know it now (the rule above)."""
    as_of = payment.charge_refunded_as_of
    figure = payment.charge_refunded
    for refund in refunds:
        counted = refund.stripe_created <= as_of
        if refund.status == Refund.Status.FAILED:
            if counted and refund.failed_as_of >= as_of:
                figure -= refund.amount
        elif not counted:
            figure += refund.amount
    return max(0, min(payment.amount, figure))


def recount(payment: Payment, *, actor: Actor | SystemActor) -> None:
    """Recompute the locked payment's refunded figure; the order follows it."""
    known = Refund.objects.filter(payment=payment, stripe_created__gt=0)
    before = payment.amount_refunded
    payment.amount_refunded = _charge_figure(payment, list(known))
    payment.save(
        update_fields=["amount_refunded", "charge_refunded", "charge_refunded_as_of", "updated_at"]
    )
    if payment.status != Payment.Status.SUCCEEDED:
        return
    if payment.amount_refunded >= payment.amount:
        order_mark_refunded(order_id=payment.order_id, actor=actor)
    elif before >= payment.amount:
        order_unmark_refunded(order_id=payment.order_id, actor=STRIPE)


def _clean_reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("Say why the money goes back.", attr="reason")
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise InvalidInput(f"Use at most {REASON_MAX} characters.", attr="reason")
    if not storable(reason):
        raise InvalidInput("That text contains a character we cannot store.", attr="reason")
    return reason


def _refundable_payment(order_id: int) -> Payment:
    """The order's card payment, locked: refunds of one payment and its webhooks take turns."""
    payment = (
        Payment.objects.select_for_update(no_key=True, of=("self",))
        .filter(order_id=order_id)
        .first()
    )
    if payment is None:
        if not Order.objects.filter(pk=order_id).exists():
            raise NotFoundError("No such order.")
        raise ConflictError(
            "This order was not paid by card here, so there is no payment to refund.",
            code="not_refundable",
        )
    if payment.status != Payment.Status.SUCCEEDED:
        raise ConflictError(
            "This order's card payment has not gone through, so there is nothing to refund.",
            code="not_refundable",
        )
    return payment


REFUND_STATUS = {
    "pending": Refund.Status.PENDING,
    "requires_action": Refund.Status.PENDING,
    "succeeded": Refund.Status.SUCCEEDED,
    "failed": Refund.Status.FAILED,
    "canceled": Refund.Status.FAILED,
}


def refund_create(
    *, actor: Actor, order_id: int, amount: Any, reason: Any, operation_id: Any
) -> tuple[Refund, bool]:
    """Refund ``amount`` (minor units) of the order's card payment, in full or in part, as the
    operation ``operation_id``; returns the refund and whether it was made before (a replay).

    Runs its three steps in transactions of its own (see above): call it outside a
    transaction, as the API and the dashboard do, or the caller's transaction keeps the
    reservation uncommitted and the payment locked while Stripe is asked. Raises
    :class:`ProviderError` when Stripe refuses (the refund is kept, failed) and
    :class:`RefundUnconfirmed` when Stripe gave no answer (kept, pending); the same operation
    replays either answer.
    """
    actor.require(Scope.PAYMENTS_REFUND)
    amount = amount_of(amount)
    reason = _clean_reason(reason)
    key = refund_key(actor.restaurant.pk, operation(operation_id))
    with tenant_context(actor.restaurant):
        refund, replayed = _refund_reserve(
            actor=actor, order_id=order_id, amount=amount, reason=reason, key=key
        )
    failure: gateway.GatewayError | None = None
    if _unsettled(refund):
        refund, failure = _refund_send(actor.restaurant, refund)
    if refund.status == Refund.Status.FAILED:
        if failure is not None:
            raise provider_error(failure)
        raise ProviderError(f"Stripe: {refund.failure_message}", code="refund_failed")
    if _unsettled(refund):
        raise RefundUnconfirmed(UNCONFIRMED)
    return refund, replayed


def _unsettled(refund: Refund) -> bool:
    return refund.status == Refund.Status.PENDING and not refund.refund_id


def _refund_reserve(
    *, actor: Actor, order_id: int, amount: int, reason: str, key: uuid.UUID
) -> tuple[Refund, bool]:
    payment = _refundable_payment(order_id)
    existing = Refund.objects.filter(key=key).first()
    if existing is not None:
        if (existing.payment_id, existing.amount, existing.reason) != (payment.pk, amount, reason):
            raise ConflictError(
                "This Idempotency-Key was used for another refund.",
                code="idempotency_key_reused",
                attr="idempotency_key",
            )
        existing.payment = payment
        return existing, True
    remaining = refund_remaining(payment)
    if remaining <= 0:
        raise ConflictError(
            "This payment has been refunded in full already.", code="fully_refunded"
        )
    if amount > remaining:
        raise ConflictError(
            f"At most {major(remaining, payment.currency)} can still be refunded.",
            code="exceeds_refundable",
            attr="amount",
        )
    refund = Refund.objects.create(
        payment=payment,
        key=key,
        amount=amount,
        reason=reason,
        refund_application_fee=settings.REFUND_APPLICATION_FEE,
        staff=actor.member,
        staff_label=actor.member.label[:200],
    )
    return refund, False


def _send_refund(payment: Payment, refund: Refund) -> gateway.RefundResult:
    """The refund's POST to Stripe; its key is the refund's own, so a retry never acts twice."""
    return gateway.create_refund(
        account_id=payment.account_id,
        payment_intent_id=payment.payment_intent_id,
        amount=refund.amount,
        refund_application_fee=refund.refund_application_fee,
        reason=refund.reason,
        operation_id=str(refund.key),
    )


def _refund_send(
    restaurant: Restaurant, refund: Refund
) -> tuple[Refund, gateway.GatewayError | None]:
    """Steps 2 and 3 for a reserved or unconfirmed refund (no transaction may be open)."""
    payment = refund.payment
    result: gateway.RefundResult | None = None
    failure: gateway.GatewayError | None = None
    try:
        result = _send_refund(payment, refund)
    except gateway.GatewayError as error:
        failure = error
    with tenant_context(restaurant):
        return _refund_settle(refund.pk, result, failure), failure


def refund_retry(*, restaurant: Restaurant, refund: Refund) -> Refund:
    """Ask Stripe again, under the same key, for a refund it has not confirmed (its answer
    was lost, or the request never reached Stripe): Stripe replays the refund it made or
    makes it now, never a second one. For the periodic job; no transaction may be open."""
    refund, _ = _refund_send(restaurant, refund)
    return refund


def _refund_settle(
    refund_pk: int, result: gateway.RefundResult | None, failure: gateway.GatewayError | None
) -> Refund:
    payment_id = Refund.objects.values_list("payment_id", flat=True).get(pk=refund_pk)
    payment = Payment.objects.select_for_update(no_key=True, of=("self",)).get(pk=payment_id)
    refund = Refund.objects.select_for_update(no_key=True, of=("self",)).get(pk=refund_pk)
    refund.payment = payment
    if not _unsettled(refund):
        return refund  # its webhook, or a concurrent retry, recorded it first
    if result is not None:
        refund_learned(refund, refund_id=result.id, status=result.status, created=result.created)
    elif failure is not None and not failure.undecided:
        refund.status = Refund.Status.FAILED
        refund.failure_message = failure.detail[:300]
        refund.save(update_fields=["status", "failure_message"])
    return refund


def _refund_actor(refund: Refund) -> Actor | SystemActor:
    """Who made the refund, for its audit row and the order's history, whoever settles it."""
    return Actor(member=refund.staff) if refund.staff is not None else STRIPE


def refund_learned(
    refund: Refund,
    *,
    refund_id: str,
    status: str,
    created: int,
    failure_reason: str = "",
    as_of: int = 0,
) -> None:
    """Stripe made the refund (``refund.payment`` is locked): record it, audit it as made by
    whoever asked for it (once: this runs once per refund), after the recount."""
    payment = refund.payment
    remaining = refund_remaining(payment)  # this refund is still held here
    refund.refund_id = refund_id[:64]
    refund.stripe_created = created
    refund.status = REFUND_STATUS.get(status, Refund.Status.PENDING)
    if refund.status == Refund.Status.FAILED:
        refund.failed_as_of = max(as_of, created)
        refund.failure_message = (failure_reason or "Stripe could not refund this payment.")[:300]
    refund.save(
        update_fields=["refund_id", "stripe_created", "status", "failed_as_of", "failure_message"]
    )
    actor = _refund_actor(refund)
    # The order, its customer and its promotion are locked before the audit chain, which
    # comes last (nordkestrel/locks.py).
    recount(payment, actor=actor)
    if refund.status != Refund.Status.FAILED:
        audit.record(
            registry.PAYMENT_REFUNDED,
            actor=actor,
            target=Order.objects.get(pk=payment.order_id),
            changes={
                "amount": {"before": None, "after": refund.amount},
                "reason": {"before": "", "after": refund.reason},
                "remaining": {"before": remaining + refund.amount, "after": remaining},
                "refund_application_fee": {"before": None, "after": refund.refund_application_fee},
                "status": {"before": None, "after": refund.status},
            },
        )


def refund_paid_cancelled_order(*, payment: Payment) -> str | None:
    """A card payment that went through after its order was cancelled unpaid (the diner paid
    as staff cancelled, or after the order expired): the whole amount goes back at once,
    audited as Stripe's. None when the payment's order is not such an order.

    Runs in the webhook's transaction with the payment locked, Stripe called in between:
    the event stays unprocessed until the money is back, so an answer that does not come
    makes the webhook fail and Stripe's retry asks again under the same key. A definite
    refusal is recorded (a failed refund for staff to see) and logged.
    """
    order = Order.objects.get(pk=payment.order_id)
    if payment.status != Payment.Status.SUCCEEDED or order.status != Status.CANCELLED:
        return None
    if order.placed_at is not None:
        return None  # paid and placed, then cancelled by staff: refunding is their call
    key = refund_key(payment.restaurant_id, f"cancelled-order-{payment.payment_intent_id}")
    refund = Refund.objects.select_for_update(no_key=True, of=("self",)).filter(key=key).first()
    if refund is None:
        amount = refund_remaining(payment)
        if amount <= 0:
            return "refunded already"
        refund = Refund.objects.create(
            payment=payment,
            key=key,
            amount=amount,
            reason="The order was cancelled before its payment went through.",
            refund_application_fee=settings.REFUND_APPLICATION_FEE,
            staff_label=STRIPE.name,
        )
    refund.payment = payment
    if not _unsettled(refund):
        return f"refund {refund.status}"
    try:
        result = _send_refund(payment, refund)
    except gateway.GatewayError as error:
        if error.undecided:
            raise
        logger.error(
            "Stripe refused to refund a payment whose order was cancelled",
            extra={"payment_intent_id": payment.payment_intent_id, "detail": error.detail},
        )
        refund.status = Refund.Status.FAILED
        refund.failure_message = error.detail[:300]
        refund.save(update_fields=["status", "failure_message"])
        return f"the order was cancelled; the automatic refund failed: {error.detail}"
    refund_learned(refund, refund_id=result.id, status=result.status, created=result.created)
    return f"the order was cancelled: refunded in full ({refund.status})"


def refunds_of(order: Order) -> list[Refund]:
    refunds = Refund.objects.filter(payment__order=order).select_related("payment")
    return list(refunds.order_by("created_at", "id"))
