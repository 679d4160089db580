"""Webhook event handlers, dispatched by event type from one table.

A handler runs inside the restaurant's tenant context (Connect events) or the platform's
(``account.updated`` and other platform events carry their account too), in the transaction
that marks the event processed, so an event's effect and its "processed" mark commit
together. It must be idempotent and tolerate any order of arrival, and returns a short
outcome for the event's record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any]], str]

_HANDLERS: dict[str, Handler] = {}


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
