"""The event log's housekeeping, run by ``manage.py run_periodic``."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from events.models import Delivery, Event
from events.tasks import deliver_events
from nordkestrel.periodic import periodic
from tenants.context import tenant_bypass, tenant_context
from tenants.models import Restaurant

# Events younger than this are left to the task their commit queued.
REDELIVERY_GRACE = timedelta(minutes=5)
# Events per delivery task, and rows per retention DELETE.
BATCH_SIZE = 500
PRUNE_BATCH_SIZE = 5000


@periodic("events-redeliver")
def redeliver_events() -> str:
    """Queue delivery again for events still owed to a subscriber: one whose task was lost
    (a process that died between its commit and the enqueue, with a queue other than the
    database), or whose failed delivery is due for another attempt and has no task waiting.
    Delivery is once per (event, subscriber), so a task queued twice delivers nothing twice."""
    cutoff = timezone.now() - REDELIVERY_GRACE
    # Which restaurants owe anything: the one read across restaurants (a small partial index).
    with tenant_bypass():
        owing = list(
            Event.unscoped.filter(dispatched_at__isnull=True, occurred_at__lt=cutoff)
            .order_by("restaurant_id")
            .values_list("restaurant_id", flat=True)
            .distinct()
        )
    queued = 0
    for restaurant in Restaurant.objects.filter(pk__in=owing).order_by("pk"):
        with tenant_context(restaurant):
            ids = [
                str(pk)
                for pk in Event.objects.filter(dispatched_at__isnull=True, occurred_at__lt=cutoff)
                .order_by("occurred_at")
                .values_list("pk", flat=True)
            ]
        for start in range(0, len(ids), BATCH_SIZE):
            deliver_events.enqueue(
                restaurant_id=restaurant.pk, event_ids=ids[start : start + BATCH_SIZE]
            )
            queued += 1
    return f"queued {queued} delivery tasks"


@periodic("events-prune")
def prune_events() -> str:
    """Events (and their deliveries) past ``EVENT_RETENTION_DAYS`` go, restaurant by
    restaurant, in batches; nothing is due most runs, so running often is cheap."""
    cutoff = timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS)
    quote = connection.ops.quote_name
    events, deliveries = quote(Event._meta.db_table), quote(Delivery._meta.db_table)
    deleted = 0
    for restaurant in Restaurant.objects.order_by("pk"):
        while True:
            with tenant_context(restaurant), connection.cursor() as cursor:
                cursor.execute(
                    f"""
                    WITH doomed AS (
                        SELECT id FROM {events}
                         WHERE restaurant_id = %s AND occurred_at < %s LIMIT %s
                    ), undelivered AS (
                        DELETE FROM {deliveries}
                         WHERE restaurant_id = %s AND event_id IN (SELECT id FROM doomed)
                    )
                    DELETE FROM {events} WHERE id IN (SELECT id FROM doomed)
                    """,  # noqa: S608 - table names are the models', every value a parameter
                    [restaurant.pk, cutoff, PRUNE_BATCH_SIZE, restaurant.pk],
                )
                removed = cursor.rowcount
            deleted += removed
            if removed < PRUNE_BATCH_SIZE:
                break
    return f"pruned {deleted} events"
