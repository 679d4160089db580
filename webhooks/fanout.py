"""The event bus subscriber that owes each of the restaurant's endpoints the events it wants.

It runs in the task queue after the publishing transaction commits (nothing is added to that
transaction but the event row the bus writes anyway), in the restaurant's context: one
delivery row per endpoint that is enabled, asks for the event's type and may see it. A
second run for the same event adds nothing (one delivery per endpoint and message id). The
sender (``webhooks.sender``) is woken by a notification sent when the rows commit.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone

from nordkestrel import events
from nordkestrel.dbrouting import current_connection
from webhooks.models import Delivery, Endpoint

# The channel ``manage.py run_webhooks`` listens on.
CHANNEL = "nordkestrel_webhooks"


def wants(endpoint: Endpoint, event_type: str) -> bool:
    """Whether the endpoint receives events of this type: asked for (or every type), and
    visible with the endpoint's scopes."""
    if endpoint.event_types and event_type not in endpoint.event_types:
        return False
    try:
        entry = events.catalogue_entry(event_type)
    except LookupError:
        return False
    return entry.scope in set(endpoint.scopes)


def message_id(event_id: object) -> str:
    """The ``webhook-id`` of an event's message: the event's id, the same for every endpoint
    and attempt (and the id the events API lists it under)."""
    return str(event_id)


def owe(event: events.Event, endpoints: Iterable[Endpoint]) -> int:
    now = timezone.now()
    rows = [
        Delivery(
            endpoint=endpoint,
            event_id=event.id,
            event_type=event.type,
            message_id=message_id(event.id),
            next_attempt_at=now,
        )
        for endpoint in endpoints
        if wants(endpoint, event.type)
    ]
    if not rows:
        return 0
    Delivery.objects.bulk_create(rows, ignore_conflicts=True)
    notify()
    return len(rows)


def notify() -> None:
    """Wake the senders when the current transaction commits (PostgreSQL sends it then)."""
    with current_connection().cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


@events.subscriber("webhooks.fanout", every_type=True)
def owe_deliveries(event: events.Event) -> None:
    # An endpoint receives what is published once it exists, not the backlog before it (the
    # events API has that).
    endpoints = Endpoint.objects.filter(
        enabled=True, created_at__lte=events.published_at(event.id)
    ).order_by("id")
    owe(event, endpoints)
