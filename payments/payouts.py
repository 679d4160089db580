"""The connected account's balance and payouts: the overview staff read from Stripe, the
instant payouts they ask for (once per operation, however often it is sent), and payouts as
Stripe's webhooks report them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from audit import registry
from audit import services as audit
from nordkestrel.errors import ConflictError
from payments import gateway
from payments.models import Payout, StripeAccount
from payments.money_common import amount_of, epoch, major, operation, provider_error, whole
from payments.services import connected_account
from staff.auth import Actor
from staff.roles import Scope
from tenants.context import current_restaurant


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
                by_kind[kind] = by_kind.get(kind, 0) + whole(entry.get("amount"))
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
        amount=whole(obj.get("amount")),
        currency=str(obj.get("currency") or "").upper()[:3],
        method=str(obj.get("method") or "standard"),
        status=str(obj.get("status") or ""),
        arrival_date=epoch(obj.get("arrival_date")),
        created=epoch(obj.get("created")),
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
        raise provider_error(error) from None
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
    amount = amount_of(amount)
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
        raise provider_error(error) from None
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
            f"At most {major(instant, currency)} can be paid out instantly.",
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
        raise provider_error(error) from None
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
