"""The event log every published domain event is written to (the outbox), and what became of
each subscriber's delivery."""

from __future__ import annotations

import uuid

from django.db import models

from nordkestrel import events
from tenants.models import TenantModel


class Event(TenantModel):
    # A UUIDv7 made when the event is published: ids sort by time, and a reader can page by id.
    id = models.UUIDField(primary_key=True, default=events.new_event_id, editable=False)
    type = models.CharField(max_length=64)
    version = models.PositiveSmallIntegerField()
    payload = models.JSONField()
    occurred_at = models.DateTimeField()
    # Set once every subscriber has had it (or has failed for good); until then the periodic
    # redelivery picks it up if its delivery task never ran.
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["occurred_at", "id"]
        indexes = [
            models.Index(fields=["restaurant", "occurred_at"], name="events_by_time"),
            models.Index(
                fields=["restaurant", "occurred_at"],
                name="events_undispatched",
                condition=models.Q(dispatched_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"

    def as_event(self) -> events.Event:
        return events.Event(
            id=self.id if isinstance(self.id, uuid.UUID) else uuid.UUID(str(self.id)),
            restaurant_id=self.restaurant_id,
            type=self.type,
            version=self.version,
            payload=self.payload,
            occurred_at=self.occurred_at,
        )


class Delivery(TenantModel):
    """One subscriber's handling of one event: written after each attempt."""

    # Looked up through the unique constraint, which leads with the restaurant.
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    subscriber = models.CharField(max_length=100)
    attempts = models.PositiveSmallIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The last failure (empty once delivered), and when the next attempt is due.
    error = models.TextField(blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["restaurant", "event", "subscriber"], name="events_delivery_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber}: {self.event_id}"
