"""Delivering committed events to their subscribers, each (event, subscriber) once.

For each event, under a session lock of its own (two runs never deliver the same event at
once, whatever queued them): every subscriber not yet delivered runs in the restaurant's tenant
context, in a transaction of its own; then its delivery is recorded. A subscriber that raises
is rolled back, its failure recorded with the time of its next attempt, and the others still
run. When every subscriber has had the event, or has failed :data:`MAX_ATTEMPTS` times, the
event is marked dispatched.

A worker that dies after a subscriber's work and before its delivery is recorded runs it again
next time: subscribers make a second run harmless (the order email's idempotency key).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from events.models import Delivery, Event
from nordkestrel import events, locks
from nordkestrel.mail import describe_error
from tenants.context import tenant_context
from tenants.models import Restaurant

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# The wait before the 2nd, 3rd, ... attempt.
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))


@dataclass
class Outcome:
    delivered: int = 0
    failed: int = 0
    # The earliest time a delivery that failed in this run may be tried again.
    retry_at: datetime | None = None

    def as_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "failed": self.failed}


def _lock_number(event_id: uuid.UUID) -> int:
    return int.from_bytes(event_id.bytes[-4:], "big")


def lock_key(event_id: uuid.UUID) -> tuple[int, int]:
    """The event's advisory lock (``locks.EVENT_DELIVERY``), as PostgreSQL sees its two
    numbers: its id's last (random) 32 bits."""
    return locks.EVENT_DELIVERY.number, _lock_number(event_id) % locks.KEY_RANGE


def _event_lock(event_id: uuid.UUID) -> contextlib.AbstractContextManager[bool]:
    """A session lock (it spans the subscribers' transactions); False when another run has it."""
    return locks.session_lock(locks.EVENT_DELIVERY, _lock_number(event_id))


def deliver(
    *, restaurant_id: int, event_ids: Sequence[str], outcome: Outcome | None = None
) -> Outcome:
    """Deliver the undispatched ones of ``event_ids`` (one restaurant's), in order.

    Called by the worker, outside any transaction: each subscriber's transaction commits (and
    its ``on_commit`` work, such as sending the email it built, runs) before the delivery is
    recorded."""
    outcome = outcome or Outcome()
    restaurant = Restaurant.objects.filter(pk=restaurant_id).first()
    if restaurant is None:
        return outcome
    with tenant_context(restaurant):
        owed = list(
            Event.objects.filter(pk__in=list(event_ids), dispatched_at__isnull=True)
            .order_by("id")
            .values_list("pk", flat=True)
        )
    for event_id in owed:
        with _event_lock(event_id) as acquired:
            if acquired:
                _deliver_event(restaurant, event_id, outcome)
    return outcome


def _deliver_event(restaurant: Restaurant, event_id: uuid.UUID, outcome: Outcome) -> None:
    with tenant_context(restaurant):
        row = Event.objects.filter(pk=event_id, dispatched_at__isnull=True).first()
        if row is None:  # dispatched by another run meanwhile
            return
        past = {d.subscriber: d for d in Delivery.objects.filter(event_id=event_id)}
    event = row.as_event()
    now = timezone.now()
    owed = False
    for subscriber in events.subscribers_of(event.type):
        delivery = past.get(subscriber.name) or Delivery(
            event_id=event.id, subscriber=subscriber.name
        )
        if delivery.delivered_at is not None or delivery.attempts >= MAX_ATTEMPTS:
            continue
        if delivery.retry_at is not None and delivery.retry_at > now:
            owed = True  # its retry is already scheduled by the run that failed it
            continue
        if not _attempt(restaurant, subscriber, event, delivery, outcome):
            owed = owed or delivery.attempts < MAX_ATTEMPTS
    if not owed:
        with tenant_context(restaurant):
            Event.objects.filter(pk=event.id).update(dispatched_at=timezone.now())


def _attempt(
    restaurant: Restaurant,
    subscriber: events.Subscriber,
    event: events.Event,
    delivery: Delivery,
    outcome: Outcome,
) -> bool:
    try:
        with tenant_context(restaurant):
            subscriber.handler(event)
    except Exception as error:
        delivery.attempts += 1
        delivery.error = describe_error(error)[:2000]
        if delivery.attempts < MAX_ATTEMPTS:
            delivery.retry_at = timezone.now() + BACKOFF[delivery.attempts - 1]
            outcome.retry_at = min(filter(None, (outcome.retry_at, delivery.retry_at)))
        else:
            delivery.retry_at = None
        outcome.failed += 1
        logger.error(
            "Event subscriber failed (attempt %s of %s): %s",
            delivery.attempts,
            MAX_ATTEMPTS,
            delivery.error,
            extra={
                "restaurant_id": restaurant.pk,
                "event_id": str(event.id),
                "event_type": event.type,
                "subscriber": subscriber.name,
            },
        )
        with tenant_context(restaurant):
            delivery.save()
        return False
    delivery.attempts += 1
    delivery.delivered_at = timezone.now()
    delivery.error, delivery.retry_at = "", None
    with tenant_context(restaurant):
        delivery.save()
    outcome.delivered += 1
    return True
