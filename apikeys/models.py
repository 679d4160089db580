from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from staff.models import StaffMember
from tenants.models import Restaurant, TenantModel


class ApiKey(TenantModel):
    """A restaurant's credential for an integrator: shown once, stored as its SHA-256.

    After a roll the previous secret keeps working until ``previous_expires_at``; rolling
    again ends that overlap at once (at most two secrets are ever valid)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"
        # Its creator left the roster (or was deactivated): it acts for nobody.
        CREATOR_INACTIVE = "creator_inactive", "Creator no longer on staff"

    name = models.CharField(max_length=80)
    # Found across restaurants through ApiKeyRoute (unique there); 190 random bits.
    secret_hash = models.CharField(max_length=64)
    last4 = models.CharField(max_length=4)
    # NULL, not "": the per-restaurant unique constraint admits many keys without one.
    previous_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    previous_last4 = models.CharField(max_length=4, blank=True)
    previous_expires_at = models.DateTimeField(null=True, blank=True)
    # Resource → none/read/write (apikeys/grants.py).
    grants = models.JSONField(default=dict)
    # CIDR ranges the key may be used from; empty: anywhere.
    allowed_ips = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(StaffMember, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    rolled_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        StaffMember, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Written by the periodic job from the usage marks (at most once a minute per key).
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    # When the Owners were told that the key expires soon (once per expiry date).
    expiry_warned_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(fields=["restaurant", "secret_hash"], name="apikeys_secret"),
            models.UniqueConstraint(
                fields=["restaurant", "previous_hash"], name="apikeys_previous_secret"
            ),
        ]
        indexes = [models.Index(fields=["restaurant", "expires_at"], name="apikeys_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.name} (…{self.last4})"

    @property
    def label(self) -> str:
        return str(self)

    def status_at(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.expires_at <= now:
            return self.Status.EXPIRED
        if not self.created_by.active:
            return self.Status.CREATOR_INACTIVE
        return self.Status.ACTIVE


def default_rate_limit() -> int:
    return int(settings.API_KEY_RATE_LIMIT)


class ApiKeySettings(TenantModel):
    """The restaurant's settings for its keys: the requests per minute each key may make."""

    rate_limit_per_minute = models.PositiveIntegerField(
        default=default_rate_limit,
        validators=[MinValueValidator(10), MaxValueValidator(10_000)],
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(fields=["restaurant"], name="apikeys_one_settings_row"),
        ]


class ApiKeyRoute(models.Model):
    """Which key, of which restaurant, a secret's digest is: how a request finds the key's
    restaurant before it knows it (a platform table, like payments' AccountRoute: a
    restaurant sees its own routes; only ``nordkestrel_api_key(digest)`` reads across).

    One row per valid secret: created with the key, a second during a roll's overlap,
    removed when the key is revoked or rolled again, and with the restaurant's purge."""

    digest = models.CharField(max_length=64, unique=True)
    restaurant = models.ForeignKey(Restaurant, on_delete=models.CASCADE, related_name="+")
    key_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"route of key {self.key_id}"
