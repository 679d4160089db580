"""Money after the sale: refunds, the connected account's balance and payouts, and disputes
with the order evidence to answer them.

Stripe is the source of truth; these services ask it to act (refunds, instant payouts) and
record what its webhooks report (``money_events``). Webhook events may arrive late, twice or
out of order, so every record keeps the ``created`` time of the newest event applied and
never moves backwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from audit import registry
from audit import services as audit
from menus.money import to_major
from nordkestrel.errors import ConflictError, DomainError, InvalidInput, NotFoundError
from orders.models import Order
from orders.services import order_mark_refunded
from payments import gateway
from payments.models import Dispute, Payment, Payout, Refund, StripeAccount
from payments.services import STRIPE, connected_account
from staff.auth import Actor
from staff.roles import Scope
from tenants.context import current_restaurant

REASON_MAX = 300
# A Stripe amount is at most eight digits in most currencies; anything larger is a typo.
AMOUNT_MAX = 99_999_999
OPERATION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


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


def refund_remaining(payment: Payment) -> int:
    """What can still be refunded: the captured amount less what Stripe has refunded and
    less our refunds still pending at Stripe."""
    if payment.status != Payment.Status.SUCCEEDED:
        return 0
    return max(0, payment.amount - payment.amount_refunded - _total(payment, Refund.Status.PENDING))


def _total(payment: Payment, status: str) -> int:
    """The sum of the payment's refunds in ``status``."""
    refunds = Refund.objects.filter(payment=payment, status=status)
    return int(refunds.aggregate(total=Sum("amount"))["total"] or 0)


def _clean_reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("Say why the money goes back.", attr="reason")
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise InvalidInput(f"Use at most {REASON_MAX} characters.", attr="reason")
    if "\x00" in reason:
        raise InvalidInput("That text contains a character we cannot store.", attr="reason")
    return reason


def _refundable_payment(order_id: int) -> Payment:
    """The order's card payment, locked: concurrent refunds of one payment take turns, and
    the ``charge.refunded`` webhook waits for a refund in progress."""
    payment = Payment.objects.select_for_update(of=("self",)).filter(order_id=order_id).first()
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
    "succeeded": Refund.Status.SUCCEEDED,
    "failed": Refund.Status.FAILED,
    "canceled": Refund.Status.FAILED,
}


def refund_create(*, actor: Actor, order_id: int, amount: Any, reason: Any) -> Refund:
    """Refund ``amount`` (minor units) of the order's card payment, in full or in part.

    Decided under a lock on the payment, held until Stripe has answered and the answer is
    recorded: never more than remains, however many refunds run at once, and the
    ``charge.refunded`` webhook (which takes the same lock) finds this refund already
    counted. The refund row is written before Stripe is asked; its key is the idempotency
    key, so the SDK's retries never refund twice. A full refund moves the order to
    ``refunded``. Stripe's refusal marks the refund failed, changes nothing else and raises
    :class:`ProviderError` (a caller that rolls back on errors, as the API does, keeps no
    failed row).
    """
    actor.require(Scope.PAYMENTS_REFUND)
    amount = _amount(amount)
    reason = _clean_reason(reason)
    failure: gateway.GatewayError | None = None
    with transaction.atomic():
        payment = _refundable_payment(order_id)
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
            amount=amount,
            reason=reason,
            refund_application_fee=settings.REFUND_APPLICATION_FEE,
            staff_label=actor.member.label[:200],
        )
        try:
            refund_id, stripe_status = gateway.create_refund(
                account_id=payment.account_id,
                payment_intent_id=payment.payment_intent_id,
                amount=amount,
                refund_application_fee=refund.refund_application_fee,
                reason=reason,
                operation_id=str(refund.key),
            )
        except gateway.GatewayError as error:
            failure = error
            refund.status = Refund.Status.FAILED
            refund.failure_message = error.detail[:300]
            refund.save(update_fields=["status", "failure_message"])
        else:
            refund.refund_id = refund_id
            refund.status = REFUND_STATUS.get(stripe_status, Refund.Status.PENDING)
            if refund.status == Refund.Status.FAILED:
                refund.failure_message = "Stripe could not refund this payment."
            refund.save(update_fields=["refund_id", "status", "failure_message"])
            if refund.status != Refund.Status.FAILED:
                _refund_issued(actor, payment, refund, remaining)
    if failure is not None:
        raise _provider_error(failure)
    if refund.status == Refund.Status.FAILED:
        raise ProviderError(refund.failure_message, code="refund_failed")
    return refund


def _refund_issued(actor: Actor, payment: Payment, refund: Refund, remaining: int) -> None:
    if refund.status == Refund.Status.SUCCEEDED:
        payment.amount_refunded = min(payment.amount, payment.amount_refunded + refund.amount)
        payment.save(update_fields=["amount_refunded", "updated_at"])
    if payment.amount_refunded >= payment.amount:
        order_mark_refunded(order_id=payment.order_id, actor=actor)
    order = Order.objects.get(pk=payment.order_id)
    audit.record(
        registry.PAYMENT_REFUNDED,
        actor=actor,
        target=order,
        changes={
            "amount": {"before": None, "after": refund.amount},
            "reason": {"before": "", "after": refund.reason},
            "remaining": {"before": remaining, "after": remaining - refund.amount},
            "refund_application_fee": {"before": None, "after": refund.refund_application_fee},
            "status": {"before": None, "after": refund.status},
        },
    )


def refunds_of(order: Order) -> list[Refund]:
    refunds = Refund.objects.filter(payment__order=order).select_related("payment")
    return list(refunds.order_by("created_at", "id"))


def payment_of(order: Order) -> Payment | None:
    return Payment.objects.filter(order=order).first()


def _payment_for(*, payment_intent_id: str, charge_id: str) -> Payment | None:
    locked = Payment.objects.select_for_update(of=("self",))
    if payment_intent_id:
        payment = locked.filter(payment_intent_id=payment_intent_id).first()
        if payment is not None:
            return payment
    if charge_id:
        return locked.filter(charge_id=charge_id).first()
    return None


@transaction.atomic
def refund_sync_charge(*, payment_intent_id: str, charge_id: str, amount_refunded: int) -> str:
    """Apply a charge's ``amount_refunded`` (absolute, so a repeated or late event is
    harmless; it never decreases). Money refunded outside this app (Stripe's dashboard) is
    audited as Stripe's; our own refunds are already counted when this arrives, as the
    payment stays locked until they are recorded."""
    payment = _payment_for(payment_intent_id=payment_intent_id, charge_id=charge_id)
    if payment is None:
        return "no payment of this restaurant has this charge"
    if charge_id and not payment.charge_id:
        payment.charge_id = charge_id
        payment.save(update_fields=["charge_id", "updated_at"])
    before = payment.amount_refunded
    after = min(payment.amount, max(before, max(0, amount_refunded)))
    if after != before:
        payment.amount_refunded = after
        payment.save(update_fields=["amount_refunded", "updated_at"])
        # Stripe's total may already count our refunds still pending there: not news.
        if after - before > _total(payment, Refund.Status.PENDING):
            audit.record(
                registry.PAYMENT_REFUNDED,
                actor=STRIPE,
                target=Order.objects.get(pk=payment.order_id),
                changes={"amount_refunded": {"before": before, "after": after}},
            )
    full = payment.status == Payment.Status.SUCCEEDED and after >= payment.amount
    if full:
        order_mark_refunded(order_id=payment.order_id, actor=STRIPE)
    if after == before:
        return "refund already recorded"
    return "refunded in full" if full else f"refunded {after} of {payment.amount}"


@transaction.atomic
def refund_sync(*, refund_id: str, status: str, failure_reason: str) -> str:
    """A refund's later fate (one that Stripe first reported as pending)."""
    refund = (
        Refund.objects.select_for_update(of=("self",)).filter(refund_id=refund_id).first()
        if refund_id
        else None
    )
    if refund is None:
        return "not a refund made here"
    new_status = REFUND_STATUS.get(status)
    if new_status is None or refund.status != Refund.Status.PENDING:
        return "no change"
    refund.status = new_status
    if new_status == Refund.Status.FAILED:
        refund.failure_message = (failure_reason or "Stripe could not refund this payment.")[:300]
    refund.save(update_fields=["status", "failure_message"])
    if new_status == Refund.Status.SUCCEEDED:
        payment = Payment.objects.select_for_update(of=("self",)).get(pk=refund.payment_id)
        # Ours only: the charge's own total (charge.refunded) may already count this one.
        ours = _total(payment, Refund.Status.SUCCEEDED)
        if ours > payment.amount_refunded:
            payment.amount_refunded = min(payment.amount, ours)
            payment.save(update_fields=["amount_refunded", "updated_at"])
        if payment.amount_refunded >= payment.amount:
            order_mark_refunded(order_id=payment.order_id, actor=STRIPE)
    return f"refund {new_status}"


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


def payout_instant(*, actor: Actor, amount: Any, operation_id: str) -> Payout:
    """An instant payout of ``amount`` (minor units, the restaurant's currency) to the
    account's bank card or account, where Stripe allows it.

    ``operation_id`` is ours (a form's or a client's key): sending it again repeats nothing
    at Stripe, and the payout is recorded and audited once.
    """
    actor.require(Scope.PAYOUTS_TRIGGER)
    amount = _amount(amount)
    if not OPERATION_ID.match(operation_id):
        raise InvalidInput("Use 8 to 64 letters, digits, - or _.", attr="idempotency_key")
    account = _account()
    if not account.payouts_enabled:
        raise ConflictError(
            "Stripe has not enabled payouts for this account yet.", code="payouts_disabled"
        )
    currency = current_restaurant().currency.upper()
    try:
        balance = gateway.retrieve_balance(account_id=account.account_id)
    except gateway.GatewayError as error:
        raise _provider_error(error) from None
    instant = next((f.instant_available for f in _funds(balance) if f.currency == currency), 0)
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
    info = _payout_info(created)
    with transaction.atomic():
        # A webhook may have recorded it already; a repeated operation finds its own row.
        payout, new = Payout.objects.get_or_create(
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
        if new:
            audit.record(
                registry.PAYOUT_TRIGGERED,
                actor=actor,
                target=payout,
                changes={
                    "amount": {"before": None, "after": info.amount},
                    "currency": {"before": None, "after": info.currency or currency},
                    "method": {"before": None, "after": info.method},
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
        Payout.objects.select_for_update(of=("self",)).filter(payout_id=info.payout_id).first()
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
        return "no payment of this restaurant has this charge"
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
    dispute = Dispute.objects.select_for_update(of=("self",)).filter(dispute_id=dispute_id).first()
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
