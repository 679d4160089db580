"""Money after the sale: refunds, the connected account's balance and payouts, and disputes
with the order evidence to answer them.

Stripe is the source of truth; these services ask it to act (refunds, instant payouts) and
record what its webhooks report (``money_events``). Webhook events may arrive late, twice or
out of order, so every record keeps the ``created`` time of the newest event applied and
never moves backwards.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models, transaction
from django.db.models import Sum

from audit import registry
from audit import services as audit
from audit.services import SystemActor
from nordkestrel.errors import ConflictError, DomainError, InvalidInput, NotFoundError
from nordkestrel.money import to_major
from nordkestrel.text import storable
from orders.models import Order, Status
from orders.services import order_mark_refunded, order_unmark_refunded
from payments import gateway
from payments.handlers import missing_payment
from payments.models import Dispute, Payment, Payout, Refund, StripeAccount
from payments.services import STRIPE, connected_account
from staff.auth import Actor
from staff.roles import Scope
from tenants.context import current_restaurant, tenant_context
from tenants.models import Restaurant

logger = logging.getLogger(__name__)

REASON_MAX = 300
# A Stripe amount is at most eight digits in most currencies; anything larger is a typo.
AMOUNT_MAX = 99_999_999
OPERATION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


class ProviderError(DomainError):
    """Stripe refused the request or could not be reached: the answer carries its message
    and, where Stripe gave one, its code (e.g. ``charge_already_refunded``)."""

    status = 502
    type_ = "upstream_error"
    code = "stripe_error"


class ProviderNotConfigured(DomainError):
    status = 503
    code = "stripe_not_configured"


def _provider_error(error: gateway.GatewayError) -> DomainError:
    if error.code == "stripe_not_configured":
        return ProviderNotConfigured(error.detail)
    return ProviderError(f"Stripe: {error.detail}", code=error.code or "stripe_error")


def _amount(value: Any, attr: str = "amount") -> int:
    """A positive whole number of minor units (JSON numbers only; true/false are not)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("Give the amount as a whole number of cents (minor units).", attr=attr)
    if value <= 0:
        raise InvalidInput("The amount must be more than zero.", attr=attr)
    if value > AMOUNT_MAX:
        raise InvalidInput("That amount is too large.", attr=attr)
    return value


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _epoch(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def _major(minor: int, currency: str) -> str:
    return f"{to_major(minor, currency)} {currency.upper()}"


# --- Refunds ---------------------------------------------------------------------------------
#
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


def operation(value: Any) -> str:
    """A caller's operation id (an ``Idempotency-Key`` header or a form's hidden field)."""
    if not isinstance(value, str) or not OPERATION_ID.fullmatch(value):
        raise InvalidInput(
            "Send an Idempotency-Key of 8 to 64 letters, digits, - or _.", attr="idempotency_key"
        )
    return value


def refund_key(restaurant_id: int, operation_id: str) -> uuid.UUID:
    return uuid.uuid5(REFUND_KEYS, f"{restaurant_id}:{operation_id}")


class RefundUnconfirmed(ProviderError):
    code = "refund_unconfirmed"


UNCONFIRMED = (
    "Stripe did not confirm the refund in time; it may have been made. It stays pending and "
    "holds its amount until Stripe tells us; sending the same request again (the same "
    "Idempotency-Key) asks Stripe again and never refunds twice."
)


def _unconfirmed(payment: Payment) -> models.QuerySet[Refund]:
    return Refund.objects.filter(payment=payment, status=Refund.Status.PENDING, refund_id="")


def _held(payment: Payment) -> int:
    return int(_unconfirmed(payment).aggregate(total=Sum("amount"))["total"] or 0)


def refund_remaining(payment: Payment) -> int:
    """What can still be refunded: the amount paid less Stripe's refunded figure and less
    our refunds Stripe has not confirmed yet."""
    if payment.status != Payment.Status.SUCCEEDED:
        return 0
    return max(0, payment.amount - payment.amount_refunded - _held(payment))


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


def _recount(payment: Payment, *, actor: Actor | SystemActor) -> None:
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
    amount = _amount(amount)
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
            raise _provider_error(failure)
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
            f"At most {_major(remaining, payment.currency)} can still be refunded.",
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
        _refund_learned(refund, refund_id=result.id, status=result.status, created=result.created)
    elif failure is not None and not failure.undecided:
        refund.status = Refund.Status.FAILED
        refund.failure_message = failure.detail[:300]
        refund.save(update_fields=["status", "failure_message"])
    return refund


def _refund_actor(refund: Refund) -> Actor | SystemActor:
    """Who made the refund, for its audit row and the order's history, whoever settles it."""
    return Actor(member=refund.staff) if refund.staff is not None else STRIPE


def _refund_learned(
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
    _recount(payment, actor=actor)
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
    _refund_learned(refund, refund_id=result.id, status=result.status, created=result.created)
    return f"the order was cancelled: refunded in full ({refund.status})"


def refunds_of(order: Order) -> list[Refund]:
    refunds = Refund.objects.filter(payment__order=order).select_related("payment")
    return list(refunds.order_by("created_at", "id"))


def payment_of(order: Order) -> Payment | None:
    return Payment.objects.filter(order=order).first()


def _payment_for(*, payment_intent_id: str, charge_id: str) -> Payment | None:
    locked = Payment.objects.select_for_update(no_key=True, of=("self",))
    if payment_intent_id:
        payment = locked.filter(payment_intent_id=payment_intent_id).first()
        if payment is not None:
            return payment
    if charge_id:
        return locked.filter(charge_id=charge_id).first()
    return None


@transaction.atomic
def refund_sync_charge(
    *, payment_intent_id: str, charge_id: str, amount_refunded: int, as_of: int
) -> str:
    """Apply a ``charge.refunded`` event: Stripe's refunded figure as of the event's
    ``created`` (absolute, and it may go down; an older event than the one applied changes
    nothing). Money refunded outside this app (Stripe's dashboard) is audited as Stripe's."""
    payment = _payment_for(payment_intent_id=payment_intent_id, charge_id=charge_id)
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
    _recount(payment, actor=STRIPE)
    after = payment.amount_refunded
    # Our unconfirmed refunds may be in Stripe's figure already: not news.
    if after - before > _held(payment):
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
    payment = _payment_for(payment_intent_id=intent_id, charge_id=charge_id)
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
        if _unconfirmed(payment).exists():
            raise RefundNotSettled(
                f"Refund {refund_id} may be one of ours not settled yet; waiting for a retry."
            )
        return "not a refund made here"
    refund.payment = payment
    if not refund.refund_id:
        if refund.status != Refund.Status.PENDING:
            return "no change"
        created = _int(obj.get("created")) or as_of
        _refund_learned(
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
    _recount(payment, actor=STRIPE)
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


# --- Balance and payouts ---------------------------------------------------------------------


@dataclass(frozen=True)
class Funds:
    currency: str
    available: int
    pending: int
    instant_available: int


@dataclass(frozen=True)
class PayoutInfo:
    payout_id: str
    amount: int
    currency: str
    method: str
    status: str
    arrival_date: datetime | None
    created: datetime | None
    failure_message: str


@dataclass(frozen=True)
class PayoutOverview:
    connected: bool
    account_id: str
    payouts_enabled: bool
    funds: list[Funds]
    payouts: list[PayoutInfo]


def _account() -> StripeAccount:
    account = connected_account()
    if account is None:
        raise ConflictError(
            "No Stripe account is connected to this restaurant yet.", code="not_connected"
        )
    return account


def _funds(balance: dict[str, Any]) -> list[Funds]:
    amounts: dict[str, dict[str, int]] = {}
    for kind in ("available", "pending", "instant_available"):
        for entry in balance.get(kind) or []:
            currency = str(entry.get("currency") or "").upper()
            if currency:
                by_kind = amounts.setdefault(currency, {})
                by_kind[kind] = by_kind.get(kind, 0) + _int(entry.get("amount"))
    return [
        Funds(
            currency=currency,
            available=values.get("available", 0),
            pending=values.get("pending", 0),
            instant_available=values.get("instant_available", 0),
        )
        for currency, values in sorted(amounts.items())
    ]


def _payout_info(obj: dict[str, Any]) -> PayoutInfo:
    return PayoutInfo(
        payout_id=str(obj.get("id") or ""),
        amount=_int(obj.get("amount")),
        currency=str(obj.get("currency") or "").upper()[:3],
        method=str(obj.get("method") or "standard"),
        status=str(obj.get("status") or ""),
        arrival_date=_epoch(obj.get("arrival_date")),
        created=_epoch(obj.get("created")),
        failure_message=str(obj.get("failure_message") or ""),
    )


def payouts_overview(*, actor: Actor) -> PayoutOverview:
    """The connected account's balance by currency and its recent payouts, from Stripe
    (nothing, and ``connected`` false, while no account is connected)."""
    actor.require(Scope.PAYOUTS_READ)
    account = connected_account()
    if account is None:
        return PayoutOverview(
            connected=False, account_id="", payouts_enabled=False, funds=[], payouts=[]
        )
    try:
        balance = gateway.retrieve_balance(account_id=account.account_id)
        payouts = gateway.list_payouts(account_id=account.account_id)
    except gateway.GatewayError as error:
        raise _provider_error(error) from None
    return PayoutOverview(
        connected=True,
        account_id=account.account_id,
        payouts_enabled=account.payouts_enabled,
        funds=_funds(balance),
        payouts=[_payout_info(payout) for payout in payouts],
    )


def payout_instant(*, actor: Actor, amount: Any, operation_id: Any) -> tuple[Payout, bool]:
    """An instant payout of ``amount`` (minor units, the restaurant's currency) to the
    account's bank card or account, where Stripe allows it, as the operation
    ``operation_id`` (a form's or a client's key); returns the payout and whether the
    operation had made it before (a replay).

    A repeated operation finds its payout before the balance is read (the balance has
    dropped by then) and repeats nothing. A payout is audited once, by the first request of
    its operation that claims it, also when Stripe's ``payout.created`` webhook recorded it
    first. When the balance no longer allows the amount, Stripe's recent payouts are checked
    for one this operation made whose answer was lost.
    """
    actor.require(Scope.PAYOUTS_TRIGGER)
    amount = _amount(amount)
    operation_id = operation(operation_id)
    account = _account()
    existing = Payout.objects.filter(operation_id=operation_id).first()
    if existing is not None:
        if existing.amount != amount:
            raise ConflictError(
                "This Idempotency-Key was used for another payout.",
                code="idempotency_key_reused",
                attr="idempotency_key",
            )
        return existing, True
    if not account.payouts_enabled:
        raise ConflictError(
            "Stripe has not enabled payouts for this account yet.", code="payouts_disabled"
        )
    currency = current_restaurant().currency.upper()
    try:
        balance = gateway.retrieve_balance(account_id=account.account_id)
        instant = next((f.instant_available for f in _funds(balance) if f.currency == currency), 0)
        # An earlier request of this operation may have paid out with its answer lost: the
        # balance no longer shows the money, Stripe's recent payouts show the payout.
        made = _payout_of_operation(account.account_id, operation_id) if amount > instant else None
    except gateway.GatewayError as error:
        raise _provider_error(error) from None
    if made is not None:
        return _payout_claim(actor, made, operation_id, currency), False
    if instant <= 0:
        raise ConflictError(
            "Stripe offers no instant payout for this account right now.",
            code="instant_unavailable",
            attr="amount",
        )
    if amount > instant:
        raise ConflictError(
            f"At most {_major(instant, currency)} can be paid out instantly.",
            code="exceeds_instant_available",
            attr="amount",
        )
    try:
        created = gateway.create_instant_payout(
            account_id=account.account_id,
            amount=amount,
            currency=currency,
            operation_id=operation_id,
        )
    except gateway.GatewayError as error:
        raise _provider_error(error) from None
    return _payout_claim(actor, created, operation_id, currency), False


def _payout_of_operation(account_id: str, operation_id: str) -> dict[str, Any] | None:
    """The payout this operation made at Stripe, among the account's recent ones."""
    for payout in gateway.list_payouts(account_id=account_id):
        metadata = payout.get("metadata")
        if isinstance(metadata, dict) and metadata.get("operation") == operation_id:
            return payout
    return None


def _payout_claim(actor: Actor, obj: dict[str, Any], operation_id: str, currency: str) -> Payout:
    """Record the payout Stripe made for the operation (or find it, recorded by its webhook or
    a concurrent request) and, under its lock, claim it for the operation: the first claim is
    audited, a later one finds it claimed."""
    info = _payout_info(obj)
    with transaction.atomic():
        payout, _ = Payout.objects.get_or_create(
            payout_id=info.payout_id,
            defaults={
                "amount": info.amount,
                "currency": info.currency or currency,
                "method": info.method,
                "status": info.status,
                "arrival_date": info.arrival_date,
                "failure_message": info.failure_message[:300],
            },
        )
        payout = Payout.objects.select_for_update(no_key=True, of=("self",)).get(pk=payout.pk)
        if payout.operation_id:
            if payout.operation_id != operation_id:
                raise ConflictError(
                    "Stripe answered with a payout another request made.", code="payout_conflict"
                )
            return payout
        payout.operation_id = operation_id
        payout.save(update_fields=["operation_id"])
        audit.record(
            registry.PAYOUT_TRIGGERED,
            actor=actor,
            target=payout,
            changes={
                "amount": {"before": None, "after": payout.amount},
                "currency": {"before": None, "after": payout.currency},
                "method": {"before": None, "after": payout.method},
            },
        )
    return payout


# The order of a payout's states, to settle events of the same second.
PAYOUT_RANK = {"pending": 0, "in_transit": 1, "paid": 2, "failed": 3, "canceled": 3}


@transaction.atomic
def payout_sync(*, obj: dict[str, Any], as_of: int) -> str:
    """Record a payout as a webhook reports it, unless a newer event was applied already."""
    info = _payout_info(obj)
    if not info.payout_id:
        return "no payout id"
    existing = (
        Payout.objects.select_for_update(no_key=True, of=("self",))
        .filter(payout_id=info.payout_id)
        .first()
    )
    fields = {
        "amount": info.amount,
        "currency": info.currency,
        "method": info.method,
        "status": info.status,
        "arrival_date": info.arrival_date,
        "failure_message": info.failure_message[:300],
        "state_as_of": as_of,
    }
    if existing is None:
        Payout.objects.create(payout_id=info.payout_id, **fields)
        return f"payout {info.status}"
    newer = as_of > existing.state_as_of or (
        as_of == existing.state_as_of
        and PAYOUT_RANK.get(info.status, 0) >= PAYOUT_RANK.get(existing.status, 0)
    )
    if not newer:
        return "older than the payout's recorded state"
    for name, value in fields.items():
        setattr(existing, name, value)
    existing.save(update_fields=list(fields))
    return f"payout {info.status}"


# --- Disputes --------------------------------------------------------------------------------

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
    payment = _payment_for(payment_intent_id=intent_id, charge_id=charge_id)
    if payment is None:
        raise missing_payment(payment_intent_id=intent_id, charge_id=charge_id)
    status = str(obj.get("status") or "")[:40]
    evidence = obj.get("evidence_details")
    fields: dict[str, Any] = {
        "amount": _int(obj.get("amount")),
        "currency": str(obj.get("currency") or payment.currency).upper()[:3],
        "reason": str(obj.get("reason") or "")[:64],
        "status": status,
        "evidence_due_by": _epoch(evidence.get("due_by")) if isinstance(evidence, dict) else None,
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
            opened_at=_epoch(obj.get("created")) or _epoch(as_of) or datetime.now(UTC),
            closed_at=(_epoch(as_of) or datetime.now(UTC)) if closing else None,
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
        dispute.closed_at = _epoch(as_of) or datetime.now(UTC)
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


# --- Dispute evidence ------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceLine:
    quantity: int
    name: str
    options: list[str]
    note: str
    unit_price: int
    line_total: int


@dataclass(frozen=True)
class EvidenceStep:
    at: datetime
    from_status: str
    to_status: str
    actor_label: str


@dataclass(frozen=True)
class Evidence:
    """What the restaurant knows of a disputed order, in its own time zone."""

    restaurant: str
    zone: ZoneInfo
    order_number: int
    order_id: int
    status: str
    fulfilment: str
    currency: str
    subtotal: int
    discount: int
    tax: int
    delivery_fee: int
    tip: int
    total: int
    amount_refunded: int
    payment_intent_id: str
    charge_id: str
    times: dict[str, datetime | None]
    lines: list[EvidenceLine]
    history: list[EvidenceStep]
    delivery_address: str
    customer_name: str
    customer_email: str
    customer_order_count: int
    customer_first_order_at: datetime | None


EVIDENCE_TIMES = ("placed_at", "accepted_at", "ready_at", "completed_at")


def dispute_evidence(dispute: Dispute) -> Evidence:
    """The order behind a dispute: items, amounts, times, history, fulfilment and the diner
    (contact data: only for roles that may see it, as disputes are)."""
    payment = dispute.payment
    order = (
        Order.objects.select_related("customer")
        .prefetch_related("lines", "status_changes")
        .get(pk=payment.order_id)
    )
    restaurant = current_restaurant()
    customer = order.customer
    return Evidence(
        restaurant=restaurant.name,
        zone=restaurant.zone,
        order_number=order.number,
        order_id=order.pk,
        status=order.get_status_display(),
        fulfilment=order.get_fulfilment_display(),
        currency=order.currency,
        subtotal=order.subtotal,
        discount=order.discount,
        tax=order.tax,
        delivery_fee=order.delivery_fee,
        tip=order.tip,
        total=order.total,
        amount_refunded=payment.amount_refunded,
        payment_intent_id=payment.payment_intent_id,
        charge_id=payment.charge_id,
        times={name: getattr(order, name) for name in EVIDENCE_TIMES},
        lines=[
            EvidenceLine(
                quantity=line.quantity,
                name=line.name,
                options=[_option(m) for m in line.modifiers if isinstance(m, dict)],
                note=line.note,
                unit_price=line.unit_price,
                line_total=line.line_total,
            )
            for line in order.lines.all()
        ],
        history=[
            EvidenceStep(
                at=change.at,
                from_status=change.get_from_status_display() if change.from_status else "",
                to_status=change.get_to_status_display(),
                actor_label=change.actor_label,
            )
            for change in order.status_changes.all()
        ],
        delivery_address=_address(order.delivery_address),
        customer_name=order.contact_name,
        customer_email=order.contact_email,
        customer_order_count=customer.order_count,
        customer_first_order_at=customer.first_order_at,
    )


def _address(address: Any) -> str:
    if not isinstance(address, dict):
        return ""
    parts = [address.get(key) for key in ("line1", "line2", "postal_code", "city")]
    return ", ".join(str(part) for part in parts if part)


def _option(modifier: dict[str, Any]) -> str:
    group, name = str(modifier.get("group") or ""), str(modifier.get("name") or "")
    return f"{group}: {name}" if group else name


def local(moment: datetime | None, zone: ZoneInfo) -> str:
    """A time as the restaurant reads it: "2025-01-06 14:05 (Europe/Helsinki)"."""
    if moment is None:
        return "—"
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"


TIME_LABELS = {
    "placed_at": "Placed",
    "accepted_at": "Accepted",
    "ready_at": "Ready",
    "completed_at": "Completed",
}


def evidence_text(evidence: Evidence, dispute: Dispute) -> str:
    """A plain-text summary of the order, ready to paste into Stripe's dispute response."""
    e = evidence
    money = e.currency
    lines = [
        f"Order #{e.order_number} at {e.restaurant}, paid by card "
        f"(payment {e.payment_intent_id}{f', charge {e.charge_id}' if e.charge_id else ''}).",
        f"Disputed amount: {_major(dispute.amount, dispute.currency)}"
        f"{f' ({dispute.reason})' if dispute.reason else ''}.",
        "",
        f"Fulfilment: {e.fulfilment}"
        f"{f' to {e.delivery_address}' if e.delivery_address else ''}. "
        f"Order status now: {e.status}.",
    ]
    lines += [f"{TIME_LABELS[name]}: {local(e.times[name], e.zone)}" for name in EVIDENCE_TIMES]
    since = e.customer_first_order_at
    lines += [
        "",
        f"Customer: {e.customer_name} <{e.customer_email}>, "
        f"{e.customer_order_count} order(s) with us (not counting cancelled or refunded ones)"
        f"{f', the first on {local(since, e.zone)}' if since else ''}.",
        "",
        "Items:",
    ]
    for line in e.lines:
        options = f" ({'; '.join(line.options)})" if line.options else ""
        note = f" — note: {line.note}" if line.note else ""
        lines.append(
            f"  {line.quantity} x {line.name}{options}: {_major(line.line_total, money)}{note}"
        )
    lines += ["", f"Subtotal: {_major(e.subtotal, money)}"]
    if e.discount:
        lines.append(f"Discount: -{_major(e.discount, money)}")
    lines.append(f"Tax: {_major(e.tax, money)}")
    if e.delivery_fee:
        lines.append(f"Delivery: {_major(e.delivery_fee, money)}")
    if e.tip:
        lines.append(f"Tip: {_major(e.tip, money)}")
    lines.append(f"Total charged: {_major(e.total, money)}")
    lines.append(f"Refunded: {_major(e.amount_refunded, money)}")
    lines += ["", "Status history:"]
    for step in e.history:
        move = f"{step.from_status} -> {step.to_status}" if step.from_status else step.to_status
        lines.append(f"  {local(step.at, e.zone)}: {move} (by {step.actor_label})")
    return "\n".join(lines) + "\n"
