"""Connecting the restaurant to Stripe (Connect onboarding) and reading its account's status.

The Owner connects: one Express account is created per restaurant, and onboarding happens on
Stripe's own pages through Account Links. What the account may do (take cards, receive
payouts) changes only when Stripe says so in an ``account.updated`` webhook, never because
the Owner came back from Stripe: a return URL proves nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from audit import registry
from audit import services as audit
from nordkestrel import locks
from nordkestrel.errors import ConflictError, DomainError
from payments import gateway, inbox
from payments.handlers import account_key
from payments.models import AccountRoute, StripeAccount
from staff.auth import Actor
from staff.roles import Scope

MAX_URL_LENGTH = 2000


class StripeFailed(DomainError):
    """Stripe refused the request or could not be reached; the detail is Stripe's own."""

    status = 502
    type_ = "upstream_error"
    code = "stripe_error"


class StripeNotConfigured(DomainError):
    status = 503
    code = "stripe_not_configured"


@dataclass(frozen=True)
class AccountStatus:
    """What we know of the restaurant's Stripe account, as the last webhook left it."""

    configured: bool
    connected: bool
    disconnected: bool
    account_id: str
    details_submitted: bool
    charges_enabled: bool
    payouts_enabled: bool
    requirements_due: tuple[str, ...]
    disabled_reason: str
    connected_at: datetime | None
    platform_fee_percent: Decimal
    platform_fee_fixed: int


def account_status() -> AccountStatus:
    """The current restaurant's account, read from our row (never from Stripe's redirect)."""
    account = StripeAccount.objects.first()
    due = account.requirements_due if account is not None else []
    return AccountStatus(
        configured=gateway.configured(),
        connected=account is not None and account.disconnected_at is None,
        disconnected=account is not None and account.disconnected_at is not None,
        account_id=account.account_id if account is not None else "",
        details_submitted=bool(account and account.details_submitted),
        charges_enabled=bool(account and account.charges_enabled),
        payouts_enabled=bool(account and account.payouts_enabled),
        requirements_due=tuple(str(item) for item in due) if isinstance(due, list) else (),
        disabled_reason=account.disabled_reason if account is not None else "",
        connected_at=account.connected_at if account is not None else None,
        platform_fee_percent=Decimal(settings.PLATFORM_FEE_PERCENT),
        platform_fee_fixed=settings.PLATFORM_FEE_FIXED,
    )


def _require_configured() -> None:
    if not gateway.configured():
        raise StripeNotConfigured("Card payments are not configured on this server.")


def _failed(error: gateway.GatewayError) -> DomainError:
    if error.code == "stripe_not_configured":
        return StripeNotConfigured(error.detail)
    return StripeFailed(f"Stripe could not complete the request: {error.detail}")


def _lock_connect(restaurant_id: int) -> None:
    """One connect at a time per restaurant, so a double click waits for the first and then
    finds its account instead of creating a second one."""
    locks.lock_for_transaction(locks.STRIPE_CONNECT, restaurant_id)


@transaction.atomic
def account_connect(*, actor: Actor) -> tuple[StripeAccount, bool]:
    """The restaurant's connected account, created at Stripe the first time; (account,
    created). A restaurant has one account: once it exists, nothing new is created."""
    actor.require(Scope.PAYMENTS_CONNECT)
    _require_configured()
    restaurant = actor.restaurant
    _lock_connect(restaurant.pk)
    existing = StripeAccount.objects.first()
    if existing is not None:
        return existing, False
    # A fresh operation id per attempt: the SDK's retries reuse it (one account however often
    # the network fails), while an attempt Stripe answered with an error is not replayed.
    operation_id = f"{restaurant.pk}-{uuid.uuid4()}"
    try:
        account_id = gateway.create_account(
            restaurant_id=restaurant.pk,
            country=restaurant.country,
            email=actor.member.email,
            operation_id=operation_id,
        )
    except gateway.GatewayError as error:
        raise _failed(error) from error
    account = StripeAccount.objects.create(account_id=account_id)
    AccountRoute.objects.create(account_id=account_id, restaurant=restaurant)
    # Stripe announces a new account at once, before this transaction commits: those events
    # wait for the route and are applied once it has committed.
    inbox.wake_on_commit(account_key(account_id))
    audit.record(
        registry.PAYMENTS_ACCOUNT_CONNECTED,
        actor=actor,
        target=account,
        changes={"account_id": {"before": None, "after": account_id}},
    )
    return account, True


def account_onboarding_link(*, actor: Actor, refresh_url: str, return_url: str) -> str:
    """A fresh, single-use Account Link URL where the Owner continues onboarding at Stripe.

    The caller has checked that both URLs are our own (see :func:`is_own_url`).
    """
    actor.require(Scope.PAYMENTS_CONNECT)
    _require_configured()
    account = StripeAccount.objects.first()
    if account is None:
        raise ConflictError("Connect the restaurant to Stripe first.", code="not_connected")
    if account.disconnected_at is not None:
        raise ConflictError(
            "This Stripe account was disconnected from the platform.", code="account_disconnected"
        )
    try:
        return gateway.create_account_link(
            account_id=account.account_id,
            refresh_url=refresh_url,
            return_url=return_url,
            operation_id=str(uuid.uuid4()),
        )
    except gateway.GatewayError as error:
        raise _failed(error) from error


def own_hosts(request_host: str) -> set[str]:
    """Where Stripe may send the Owner back to: this app's host and the https origins of our
    own front ends (the Clerk authorized parties)."""
    hosts = {request_host.lower()}
    for origin in settings.CLERK_AUTHORIZED_PARTIES:
        parts = urlsplit(origin)
        if parts.scheme == "https" and parts.netloc:
            hosts.add(parts.netloc.lower())
    return hosts


def is_own_url(url: str, *, hosts: Iterable[str]) -> bool:
    """An https URL on one of ``hosts``: anything else would make Stripe an open redirect."""
    if not url or len(url) > MAX_URL_LENGTH:
        return False
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\\" for ch in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        return False
    if parts.scheme != "https" or not parts.hostname:
        return False
    if parts.username is not None or parts.password is not None:
        return False
    return parts.netloc.lower() in {host.lower() for host in hosts}
