"""The one module that talks to Stripe (and the only one that imports ``stripe``).

Every call names the connected account it acts on (``Stripe-Account``) where it is one, and
every POST carries an idempotency key derived from our own operation id. Keys, the webhook
secrets and the API base come from settings (the environment); tests point ``STRIPE_API_BASE``
at a stand-in server on loopback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from django.conf import settings

from nordkestrel import safejson

if TYPE_CHECKING:
    import stripe

# ``stripe`` is imported inside the functions that use it, never at module level: the SDK (and
# the requests stack under it) costs a web worker megabytes of memory, and most processes
# never talk to Stripe. This module is imported at start-up (the webhook handlers and the
# account purge register themselves), so a top-level import here would load it everywhere
# (tests/test_lazy_imports.py checks that it does not).


class GatewayError(Exception):
    """Stripe refused or could not be reached; ``detail`` is safe to show to staff."""

    def __init__(self, detail: str, *, code: str = "stripe_error", status: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.status = status

    @property
    def undecided(self) -> bool:
        """Stripe may not have decided: no answer (a timeout, a dropped connection), its own
        failure (5xx), the same idempotency key still in progress (409) or a rate limit
        (429). Only a retry with the same key tells whether it acted."""
        return self.status is None or self.status in (409, 429) or self.status >= 500


class SignatureError(Exception):
    """A webhook whose signature or timestamp does not check out."""


class MalformedEvent(ValueError):
    """A signed webhook whose body or object cannot be read as the event it claims to be:
    processing it can never succeed, so it is refused (400), not retried."""

    def __init__(self, detail: str, *, code: str = "invalid_event", status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.status = status


# Seconds to connect and to wait for each answer. The SDK's default (80 s, per attempt) would
# hold a staff member's request, and the rows it locks, for minutes when Stripe is slow.
TIMEOUT = (10.0, 10.0)
MAX_RETRIES = 2


def _client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise GatewayError("Card payments are not configured.", code="stripe_not_configured")
    import stripe

    base = settings.STRIPE_API_BASE
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": base} if base else None,
        http_client=stripe.RequestsClient(timeout=TIMEOUT),
        # Retries reuse the idempotency key, so a retried POST never acts twice.
        max_network_retries=MAX_RETRIES,
    )


def _call(function: Any, params: dict[str, Any], options: dict[str, Any]) -> Any:
    import stripe

    try:
        return function(params, options)
    except stripe.StripeError as error:
        raise GatewayError(
            error.user_message or "Stripe could not complete the request.",
            code=getattr(error, "code", None) or "stripe_error",
            status=error.http_status,
        ) from error


def configured() -> bool:
    """Both keys are set: the server's to create payments, the browser's to take them."""
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_PUBLISHABLE_KEY)


def livemode() -> bool:
    return settings.STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))


# --- Connect onboarding ----------------------------------------------------------------------


def create_account(*, restaurant_id: int, country: str, email: str, operation_id: str) -> str:
    """A new Express connected account for the restaurant; returns its id."""
    params: dict[str, Any] = {
        "type": "express",
        "capabilities": {
            "card_payments": {"requested": True},
            "transfers": {"requested": True},
        },
        "metadata": {"restaurant_id": str(restaurant_id)},
    }
    if country:
        params["country"] = country
    if email:
        params["email"] = email
    account = _call(
        _client().v1.accounts.create, params, {"idempotency_key": f"account-{operation_id}"}
    )
    return str(account.id)


def create_account_link(
    *, account_id: str, refresh_url: str, return_url: str, operation_id: str
) -> str:
    link = _call(
        _client().v1.account_links.create,
        {
            "account": account_id,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "type": "account_onboarding",
        },
        {"idempotency_key": f"account-link-{operation_id}"},
    )
    return str(link.url)


def close_account(*, account_id: str) -> str:
    """Delete the connected account at Stripe, for a restaurant that left the platform.

    Returns ``"closed"``, or ``"already closed"`` when Stripe no longer knows the account (a
    repeated call). Deleting, not rejecting: rejection is Stripe's verdict on a suspicious
    account and would mark the business as one. Stripe refuses while a live account still
    holds a balance (a GatewayError). A DELETE is idempotent by itself: Stripe takes no
    idempotency key on it.
    """
    try:
        _call(
            lambda params, options: _client().v1.accounts.delete(account_id, params, options),
            {},
            {},
        )
    except GatewayError as error:
        if error.status == 404:
            return "already closed"
        raise
    return "closed"


# --- Payments ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Intent:
    id: str
    client_secret: str
    status: str
    amount: int
    currency: str
    charge_id: str
    amount_received: int


def intent_from(obj: Any) -> Intent:
    """An Intent from a PaymentIntent object (the SDK's, or an event's payload); one without
    the fields an intent has (its id, status, amount, currency) is ``MalformedEvent``."""
    import stripe

    if isinstance(obj, stripe.StripeObject):
        obj = obj.to_dict()
    charge = obj.get("latest_charge") or ""
    if isinstance(charge, dict):
        charge = charge.get("id") or ""
    intent_id, status, currency = obj.get("id"), obj.get("status"), obj.get("currency")
    amount, received = obj.get("amount"), obj.get("amount_received") or 0
    if not (
        _text(intent_id, 255)
        and _text(status, 40)
        and _text(currency, 3)
        and _text(charge, 255, empty=True)
        and _amount(amount)
        and _amount(received)
    ):
        raise MalformedEvent("The PaymentIntent lacks its id, status, amount or currency.")
    return Intent(
        id=intent_id,
        client_secret=str(obj.get("client_secret") or ""),
        status=status,
        amount=amount,
        currency=currency.upper(),
        charge_id=charge,
        amount_received=received,
    )


def _text(value: Any, longest: int, *, empty: bool = False) -> bool:
    return isinstance(value, str) and (empty or bool(value)) and len(value) <= longest


def _amount(value: Any) -> bool:
    """An amount in minor units that PostgreSQL's bigint holds."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def create_payment_intent(
    *,
    account_id: str,
    amount: int,
    currency: str,
    application_fee_amount: int,
    metadata: dict[str, str],
    operation_id: str,
) -> Intent:
    """A direct charge on the connected account, with the platform's fee."""
    intent = _call(
        _client().v1.payment_intents.create,
        {
            "amount": amount,
            "currency": currency.lower(),
            "application_fee_amount": application_fee_amount,
            "automatic_payment_methods": {"enabled": True},
            "metadata": metadata,
        },
        {"stripe_account": account_id, "idempotency_key": f"payment-intent-{operation_id}"},
    )
    return intent_from(intent)


def cancel_payment_intent(*, account_id: str, payment_intent_id: str, operation_id: str) -> Intent:
    """Cancel an intent that must not be paid any more (its order was cancelled). Stripe
    refuses (a GatewayError) once the intent succeeded or is processing."""
    intent = _call(
        lambda params, options: _client().v1.payment_intents.cancel(
            payment_intent_id, params, options
        ),
        {},
        {
            "stripe_account": account_id,
            "idempotency_key": f"payment-intent-cancel-{operation_id}",
        },
    )
    return intent_from(intent)


def retrieve_payment_intent(*, account_id: str, payment_intent_id: str) -> Intent:
    intent = _call(
        lambda params, options: _client().v1.payment_intents.retrieve(
            payment_intent_id, params, options
        ),
        {},
        {"stripe_account": account_id},
    )
    return intent_from(intent)


class RefundResult(NamedTuple):
    id: str
    status: str
    # Stripe's creation time (epoch seconds).
    created: int


def create_refund(
    *,
    account_id: str,
    payment_intent_id: str,
    amount: int,
    refund_application_fee: bool,
    reason: str,
    operation_id: str,
) -> RefundResult:
    """The refund Stripe made (or, for a repeated ``operation_id``, made before). The
    operation rides along in the metadata, so the refund's webhooks name it too."""
    refund = _call(
        _client().v1.refunds.create,
        {
            "payment_intent": payment_intent_id,
            "amount": amount,
            "refund_application_fee": refund_application_fee,
            "metadata": {"reason": reason[:500], "operation": operation_id},
        },
        {"stripe_account": account_id, "idempotency_key": f"refund-{operation_id}"},
    )
    created = refund.to_dict().get("created")
    return RefundResult(
        id=str(refund.id),
        status=str(refund.status),
        created=created if isinstance(created, int) else int(time.time()),
    )


# --- Balance and payouts -------------------------------------------------------------------


def retrieve_balance(*, account_id: str) -> dict[str, Any]:
    balance = _call(
        lambda params, options: _client().v1.balance.retrieve(params, options),
        {},
        {"stripe_account": account_id},
    )
    return balance.to_dict()


def list_payouts(*, account_id: str, limit: int = 20) -> list[dict[str, Any]]:
    payouts = _call(_client().v1.payouts.list, {"limit": limit}, {"stripe_account": account_id})
    return [payout.to_dict() for payout in payouts.data]


def create_instant_payout(
    *, account_id: str, amount: int, currency: str, operation_id: str
) -> dict[str, Any]:
    """The payout, keyed by the account and our operation: a repeated operation gets the
    same payout back. The operation is in its metadata, so the payout list names it."""
    payout = _call(
        _client().v1.payouts.create,
        {
            "amount": amount,
            "currency": currency.lower(),
            "method": "instant",
            "metadata": {"operation": operation_id},
        },
        {
            "stripe_account": account_id,
            "idempotency_key": f"payout-{account_id}-{operation_id}",
        },
    )
    return payout.to_dict()


# --- Webhooks ----------------------------------------------------------------------------------


def verify_event(payload: bytes, signature: str | None, *, secret: str) -> dict[str, Any]:
    """The event, once its signature over the raw body and its timestamp (300 s) check out.

    The SDK only checks the signature over the raw bytes; an unsigned body is never parsed,
    and a signed one is parsed here with the product's bounds (``nordkestrel.safejson``:
    nesting, size, strict JSON), never by recursion. A signed body that is not a JSON object
    is ``MalformedEvent``.
    """
    if not secret:
        raise SignatureError("No webhook secret is configured for this endpoint.")
    import stripe

    try:
        stripe.WebhookSignature.verify_header(
            payload, signature or "", secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE
        )
    except (stripe.SignatureVerificationError, ValueError) as error:
        raise SignatureError(str(error)) from None
    try:
        event = safejson.loads(payload)
    except safejson.JSONRefused as refused:
        raise MalformedEvent(refused.detail, code=refused.code, status=refused.status) from None
    if not isinstance(event, dict):
        raise MalformedEvent("The payload is not an event object.")
    return event
