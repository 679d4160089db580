"""Webhook event handlers, dispatched by event type from one table.

A handler runs inside the restaurant's tenant context (Connect events) or the platform's
(``account.updated`` and other platform events carry their account too), in the transaction
that marks the event processed, so an event's effect and its "processed" mark commit
together. It must be idempotent and tolerate any order of arrival, and returns a short
outcome for the event's record.

A handler whose row is not here yet (Stripe may announce a PaymentIntent before the
transaction that records it has committed) raises :class:`NotYet`, naming the row it waits
for: its effect rolls back, the event is kept unprocessed and ``payments.inbox`` applies it
when that row appears. It never reports success for an event it did not apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any]], str]

_HANDLERS: dict[str, Handler] = {}


class NotYet(Exception):
    """The event concerns a row that is not here (yet): it waits for ``key``."""

    def __init__(self, key: str, what: str) -> None:
        super().__init__(what)
        self.key = key[:100]
        self.what = what


def payment_key(payment_intent_id: str) -> str:
    return f"payment:{payment_intent_id}"


def account_key(account_id: str) -> str:
    return f"account:{account_id}"


def missing_payment(*, payment_intent_id: str, charge_id: str) -> NotYet:
    """An event about a payment (a charge, a refund, a dispute) none of ours has: it waits for
    the payment of that PaymentIntent, or, when only the charge is named, for that charge."""
    if payment_intent_id:
        return NotYet(payment_key(payment_intent_id), f"payment {payment_intent_id}")
    return NotYet(f"charge:{charge_id}", f"the payment of charge {charge_id or '(none)'}")


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        for event_type in event_types:
            if event_type in _HANDLERS:
                raise ValueError(f"{event_type} already has a handler.")
            _HANDLERS[event_type] = function
        return function

    return register


def handler_for(event_type: str) -> Handler | None:
    return _HANDLERS.get(event_type)


def handled_types() -> list[str]:
    return sorted(_HANDLERS)
