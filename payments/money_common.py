"""What refunds, payouts and disputes share: the errors Stripe's refusals become, the
caller's amount and operation id, reading the fields of Stripe's objects, and the payment an
event names.

Stripe is the source of truth; the services ask it to act (refunds, instant payouts) and
record what its webhooks report (``money_events``). Webhook events may arrive late, twice or
out of order, so every record keeps the ``created`` time of the newest event applied and
never moves backwards.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from nordkestrel.errors import DomainError, InvalidInput
from nordkestrel.money import to_major
from orders.models import Order
from payments import gateway
from payments.models import Payment

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


def provider_error(error: gateway.GatewayError) -> DomainError:
    if error.code == "stripe_not_configured":
        return ProviderNotConfigured(error.detail)
    return ProviderError(f"Stripe: {error.detail}", code=error.code or "stripe_error")


def amount_of(value: Any, attr: str = "amount") -> int:
    """A positive whole number of minor units (JSON numbers only; true/false are not)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("Give the amount as a whole number of cents (minor units).", attr=attr)
    if value <= 0:
        raise InvalidInput("The amount must be more than zero.", attr=attr)
    if value > AMOUNT_MAX:
        raise InvalidInput("That amount is too large.", attr=attr)
    return value


def operation(value: Any) -> str:
    """A caller's operation id (an ``Idempotency-Key`` header or a form's hidden field)."""
    if not isinstance(value, str) or not OPERATION_ID.fullmatch(value):
        raise InvalidInput(
            "Send an Idempotency-Key of 8 to 64 letters, digits, - or _.", attr="idempotency_key"
        )
    return value


def whole(value: Any) -> int:
    """A whole number field of a Stripe object (0 when absent or not one)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def epoch(value: Any) -> datetime | None:
    """A Unix time field of a Stripe object (None when absent or not one)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def major(minor: int, currency: str) -> str:
    """An amount as people read it: "12.50 EUR"."""
    return f"{to_major(minor, currency)} {currency.upper()}"


def payment_for(*, payment_intent_id: str, charge_id: str) -> Payment | None:
    """The payment an event names, by its intent or else its charge, locked."""
    locked = Payment.objects.select_for_update(no_key=True, of=("self",))
    if payment_intent_id:
        payment = locked.filter(payment_intent_id=payment_intent_id).first()
        if payment is not None:
            return payment
    if charge_id:
        return locked.filter(charge_id=charge_id).first()
    return None


def payment_of(order: Order) -> Payment | None:
    """The order's card payment, if it has one (read only)."""
    return Payment.objects.filter(order=order).first()
