"""The event bus: domain events published inside the writing transaction, delivered to their
subscribers after it commits (a transactional outbox).

A domain app declares its event types in its own ``events.py``; each type has a name, a
version, the JSON Schema of its payload and the scope that may see it::

    ORDER_PLACED = events.register(events.EventType(
        name="order.placed", version=1, scope=Scope.ORDERS_READ, schema={...},
        description="An order reached the kitchen.",
    ))

A service publishes inside its transaction; the event row is written with the change or not
at all::

    events.publish(ORDER_PLACED.new(restaurant_id=order.restaurant_id, payload={...}))

A subscriber is declared once, by event type, in a module its app imports when it is ready::

    @events.subscriber("orders.diner_email", ORDER_PLACED, ORDER_CANCELLED)
    def email_diner(event: events.Event) -> None: ...

After the commit the task queue runs each subscriber in the restaurant's tenant context, in a
transaction of its own. A subscriber may run more than once for an event (a worker dies after
the subscriber's work, before its success is recorded): what it does outside the database
carries a key derived from the event (the order email's idempotency key) so that a second
run changes nothing. One subscriber's failure is recorded and retried without holding up the
others.

Fields whose values only some staff may see are marked in the schema with ``"x-scope"`` (diner
contact data: ``Scope.CUSTOMERS_READ``); :func:`visible_payload` strips them for a reader who
lacks the scope.

This module imports no app: the table the events are written to belongs to the ``events``
app, which installs itself as the outbox when Django starts.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils import timezone

# The schema keyword that marks a payload field only readers with that scope may see.
SCOPE_KEYWORD = "x-scope"


_last_id = (0, 0)  # (millisecond, counter) of the newest id made here
_id_lock = threading.Lock()


def new_event_id() -> uuid.UUID:
    """A UUIDv7: the millisecond it was made, a counter, random bits. Ids sort by time, and
    those made by one process in one millisecond in the order they were made."""
    global _last_id
    with _id_lock:
        millis, counter = time.time_ns() // 1_000_000, secrets.randbelow(2**11)
        if millis <= _last_id[0]:  # the same millisecond (or the clock stepped back)
            millis, counter = _last_id[0], _last_id[1] + 1
            if counter >= 2**12:
                millis, counter = millis + 1, 0
        _last_id = (millis, counter)
    value = (millis & (2**48 - 1)) << 80 | 0x7 << 76 | counter << 64
    value |= 0b10 << 62 | secrets.randbits(62)
    return uuid.UUID(int=value)


def published_at(event_id: uuid.UUID) -> datetime:
    """When the event was published (the millisecond its UUIDv7 id holds), whatever time its
    ``occurred_at`` names."""
    return datetime.fromtimestamp((event_id.int >> 80) / 1000, UTC)


@dataclass(frozen=True)
class Event:
    """One domain event, as it is stored and as subscribers receive it."""

    id: uuid.UUID
    restaurant_id: int
    type: str
    version: int
    payload: dict[str, Any]
    occurred_at: datetime


@dataclass(frozen=True)
class EventType:
    """An entry of the catalogue. A payload change that could break a reader is a new
    ``version`` of the same name."""

    name: str
    version: int
    # JSON Schema (draft 2020-12) of the payload.
    schema: Mapping[str, Any]
    # The scope a reader needs to see the event at all (a string of staff.roles.Scope).
    scope: str
    description: str

    def new(
        self, *, restaurant_id: int, payload: dict[str, Any], occurred_at: datetime | None = None
    ) -> Event:
        return Event(
            id=new_event_id(),
            restaurant_id=restaurant_id,
            type=self.name,
            version=self.version,
            payload=payload,
            occurred_at=occurred_at or timezone.now(),
        )

    def restricted_fields(self) -> dict[str, str]:
        """Dotted payload paths marked with a scope → that scope."""
        found: dict[str, str] = {}
        _walk_restricted(self.schema, "", found)
        return found


def restricted(scope: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` marked as visible only to readers with ``scope``."""
    return {**schema, SCOPE_KEYWORD: scope}


def _walk_restricted(schema: Mapping[str, Any], prefix: str, found: dict[str, str]) -> None:
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        if SCOPE_KEYWORD in sub:
            found[path] = sub[SCOPE_KEYWORD]
        else:
            _walk_restricted(sub, f"{path}.", found)


def _strip(schema: Mapping[str, Any], value: Any, scopes: frozenset[str]) -> Any:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not isinstance(value, dict):
        return value
    kept = {}
    for name, item in value.items():
        sub = properties.get(name, {})
        if sub.get(SCOPE_KEYWORD, None) not in (None, *scopes):
            continue
        kept[name] = _strip(sub, item, scopes)
    return kept


def visible_payload(event: Event, scopes: frozenset[str] | set[str]) -> dict[str, Any] | None:
    """The payload as a reader holding ``scopes`` may see it: None when the event is not
    theirs to see, otherwise without the fields marked with a scope they lack."""
    event_type = catalogue_entry(event.type)
    if event_type.scope not in scopes:
        return None
    kept: dict[str, Any] = _strip(event_type.schema, event.payload, frozenset(scopes))
    return kept


# --- The catalogue ---------------------------------------------------------------------------

_catalogue: dict[str, EventType] = {}


def register(event_type: EventType) -> EventType:
    if event_type.name in _catalogue:
        raise ImproperlyConfigured(f"The event type {event_type.name!r} is already registered.")
    if event_type.schema.get("type") != "object":
        raise ImproperlyConfigured(f"The payload of {event_type.name!r} must be an object.")
    _catalogue[event_type.name] = event_type
    return event_type


def catalogue() -> list[EventType]:
    """Every registered event type, by name."""
    return sorted(_catalogue.values(), key=lambda event_type: event_type.name)


def catalogue_entry(name: str) -> EventType:
    try:
        return _catalogue[name]
    except KeyError:
        raise LookupError(f"No event type {name!r} is registered.") from None


# --- Subscribers -----------------------------------------------------------------------------

Handler = Callable[[Event], None]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class Subscriber:
    # Stable: deliveries are recorded under it, so renaming one delivers past events again.
    name: str
    event_types: frozenset[str]
    handler: Handler
    # Receives every event, of every type registered now or later (outbound webhooks).
    every_type: bool = False

    def receives(self, type_name: str) -> bool:
        return self.every_type or type_name in self.event_types


_subscribers: dict[str, Subscriber] = {}


def subscriber(name: str, *event_types: EventType, every_type: bool = False) -> Callable[[H], H]:
    """Register the decorated function to receive every event of ``event_types`` (or, with
    ``every_type``, every event whatever its type)."""
    if bool(event_types) == every_type:
        raise ImproperlyConfigured("Name the event types, or ask for every type.")

    def register_handler(handler: H) -> H:
        if name in _subscribers:
            raise ImproperlyConfigured(f"A subscriber named {name!r} is already registered.")
        for event_type in event_types:
            if _catalogue.get(event_type.name) is not event_type:
                raise ImproperlyConfigured(f"{event_type.name!r} is not in the catalogue.")
        _subscribers[name] = Subscriber(
            name, frozenset(t.name for t in event_types), handler, every_type=every_type
        )
        return handler

    return register_handler


def subscribers_of(type_name: str) -> list[Subscriber]:
    return [s for s in _subscribers.values() if s.receives(type_name)]


def unsubscribe(name: str) -> None:
    """Remove a subscriber (tests that register their own)."""
    _subscribers.pop(name, None)


# --- Publishing ------------------------------------------------------------------------------


class Outbox(Protocol):
    def write(self, events: Sequence[Event]) -> None:
        """Write ``events`` in the current transaction, and have them delivered after it
        commits, in one statement."""


_outbox: Outbox | None = None


def install_outbox(outbox: Outbox) -> None:
    global _outbox
    _outbox = outbox


@dataclass
class _Batch:
    # The savepoints open where the batch began: only events published at that level wait
    # for its end (an inner savepoint can roll back without the batch noticing).
    savepoints: list[str]
    events: list[Event] = field(default_factory=list)


_batch: ContextVar[_Batch | None] = ContextVar("event_batch", default=None)


def publish(*events: Event) -> None:
    """Write ``events`` in the current transaction: they exist if and only if it commits.

    Inside :func:`collect` they wait for the end of its block and go with the others in one
    statement; otherwise they are written now (one statement however many are given)."""
    if not events:
        return
    for event in events:
        event_type = catalogue_entry(event.type)
        if event.version != event_type.version:
            raise ValueError(f"{event.type} is at version {event_type.version}.")
    if not connection.in_atomic_block:
        raise RuntimeError("publish() belongs inside the transaction that makes the change.")
    batch = _batch.get()
    if batch is not None and batch.savepoints == connection.savepoint_ids:
        batch.events.extend(events)
        return
    _write(events)


@contextmanager
def collect() -> Iterator[None]:
    """Events published in the block are written together when it ends (nothing when it
    raises): a transaction that publishes several still writes one statement."""
    if not connection.in_atomic_block:
        raise RuntimeError("collect() belongs inside a transaction.")
    outer = _batch.get()
    if outer is not None and outer.savepoints == connection.savepoint_ids:
        yield
        return
    batch = _Batch(savepoints=list(connection.savepoint_ids))
    token = _batch.set(batch)
    try:
        yield
    finally:
        _batch.reset(token)
    if batch.events:
        _write(batch.events)


def _write(events: Sequence[Event]) -> None:
    if _outbox is None:
        raise ImproperlyConfigured("No outbox is installed: add the events app.")
    _outbox.write(events)


# --- Schema building blocks for the catalogue --------------------------------------------------

ID: dict[str, Any] = {"type": "integer", "minimum": 1}
PUBLIC_ID: dict[str, Any] = {"type": "string", "format": "uuid"}
TIMESTAMP: dict[str, Any] = {"type": "string", "format": "date-time"}
OPTIONAL_TIMESTAMP: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
CURRENCY: dict[str, Any] = {"type": "string", "pattern": "^[A-Z]{3}$"}
MINOR_UNITS: dict[str, Any] = {"type": "integer", "minimum": 0}
TEXT: dict[str, Any] = {"type": "string"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}


def obj(**properties: Mapping[str, Any]) -> dict[str, Any]:
    """An object schema with exactly these properties, all required."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": sorted(properties),
        "additionalProperties": False,
    }


def enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def timestamp(value: datetime | None) -> str | None:
    """ISO 8601 in UTC, as payloads carry times."""
    return None if value is None else value.astimezone(UTC).isoformat()
