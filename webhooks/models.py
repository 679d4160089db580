"""Webhook endpoints, the deliveries owed to them (one per event and endpoint) and every
attempt at one (the delivery log)."""

from __future__ import annotations

from django.db import models

from staff.models import StaffMember
from tenants.models import TenantModel


class Endpoint(TenantModel):
    """A URL of the restaurant's integrator that receives its events, signed with the
    endpoint's secret (Standard Webhooks)."""

    class Disabled(models.TextChoices):
        NOT = "", "Enabled"
        MANUALLY = "manual", "Disabled by staff or an integrator"
        GONE = "gone", "The endpoint answered 410 Gone"
        FAILING = "failing", "Every delivery failed for days"

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # Event type names it receives; empty: every type its scopes may see.
    event_types = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(
        max_length=16, choices=Disabled.choices, default=Disabled.NOT, blank=True
    )
    disabled_at = models.DateTimeField(null=True, blank=True)
    # ``whsec_`` + base64 of 32 random bytes. After a rotation the previous secret still
    # signs (a second signature) until ``previous_secret_expires_at``.
    secret = models.CharField(max_length=64)
    previous_secret = models.CharField(max_length=64, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # The scopes of whoever last set what it receives (a person's role, or a key's grants
    # within its creator's role): events and payload fields beyond them are never sent.
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The API key it was created with, if any (its id; keys are never deleted, only revoked).
    created_by_key_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The first failure since the last success; cleared by a success. An endpoint failing
    # for ``health.FAILING_DAYS`` days is disabled, with a warning a day before.
    failing_since = models.DateTimeField(null=True, blank=True)
    failure_warned_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["restaurant", "failing_since"],
                name="webhooks_endpoint_failing",
                condition=models.Q(failing_since__isnull=False, enabled=True),
            )
        ]

    def __str__(self) -> str:
        return self.url


class Delivery(TenantModel):
    """One event (or test message) owed to one endpoint. Its ``message_id`` is the
    ``webhook-id`` header of every attempt, replays included: receivers deduplicate on it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The event (events_event; no foreign key: both are pruned after 30 days on their own).
    event_id = models.UUIDField(null=True, blank=True)
    event_type = models.CharField(max_length=64)
    message_id = models.CharField(max_length=64)
    # The body of a test message (an event's body is built from the event at each attempt).
    test_payload = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the next attempt is due (NULL once it succeeded or failed for good), and until when
    # a sender holds it (a sender that dies lets go when this passes).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    # The next attempt was asked for by hand (send again, recover): one attempt, logged as
    # manual, and no retries after it.
    manual = models.BooleanField(default=False)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["restaurant", "endpoint", "message_id"], name="webhooks_delivery_once"
            ),
        ]
        indexes = [
            # What a sender claims next, endpoint by endpoint.
            models.Index(
                fields=["restaurant", "endpoint", "next_attempt_at"],
                name="webhooks_delivery_due",
                condition=models.Q(next_attempt_at__isnull=False),
            ),
            models.Index(fields=["restaurant", "created_at"], name="webhooks_delivery_by_time"),
            # An endpoint's log, newest first, whole or by status (and "recover since").
            models.Index(fields=["restaurant", "endpoint", "id"], name="webhooks_delivery_log"),
            models.Index(
                fields=["restaurant", "endpoint", "status", "id"],
                name="webhooks_delivery_by_status",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → endpoint {self.endpoint_id}"


class Attempt(TenantModel):
    """One HTTP request to an endpoint and what came of it."""

    class Trigger(models.TextChoices):
        AUTOMATIC = "automatic", "Automatic"
        MANUAL = "manual", "Sent again by hand"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="log")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="+")
    attempted_at = models.DateTimeField()
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.AUTOMATIC)
    # The answer's status, or the error that left none (refused address, timeout, TLS).
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField()
    # The first 2 KB of the answer's body.
    response_body = models.TextField(blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-attempted_at", "-id"]
        indexes = [
            models.Index(fields=["restaurant", "attempted_at"], name="webhooks_attempt_by_time"),
            models.Index(fields=["restaurant", "delivery"], name="webhooks_attempt_delivery"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.pk} of delivery {self.delivery_id}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
