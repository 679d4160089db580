"""The append-only, hash-chained audit log.

PostgreSQL enforces append-only (migration 0002's triggers): no UPDATE, no TRUNCATE, and
DELETE only of events past retention, inside the prune function. Python refuses too.
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

from django.db import models

from tenants.models import Restaurant, TenantManager, TenantModel, TenantQuerySet, UnscopedManager


class AppendOnlyError(RuntimeError):
    """Audit rows are never changed or deleted (retention pruning aside)."""


class AppendOnlyQuerySet(TenantQuerySet):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events cannot be changed.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("Audit events are only removed by retention pruning.")


class AuditManager(TenantManager):
    queryset_class = AppendOnlyQuerySet


class AuditEvent(TenantModel):
    # PROTECT: the log outlives what it describes; a restaurant with events is never deleted
    # by the ORM (account deletion keeps the row and its log for their 12 months).
    restaurant = models.ForeignKey(Restaurant, on_delete=models.PROTECT, related_name="+")
    sequence = models.PositiveBigIntegerField()
    occurred_at = models.DateTimeField()
    action = models.CharField(max_length=64)
    actor_type = models.CharField(max_length=16)  # staff, system, stripe, scheduler
    actor_id = models.BigIntegerField(null=True, blank=True)  # the staff member, if any
    actor_clerk_user_id = models.CharField(max_length=64, blank=True)
    actor_role = models.CharField(max_length=16, blank=True)
    actor_label = models.CharField(max_length=254, blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=254, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    # Text, not inet: stored exactly as normalized and hashed (inet would rewrite some forms).
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    objects: ClassVar[AuditManager] = AuditManager()
    unscoped: ClassVar[UnscopedManager] = UnscopedManager()
    # The log outlives an account purge; only retention pruning removes its rows.
    purged_with_restaurant: ClassVar[bool] = False

    class Meta(TenantModel.Meta):
        ordering = ["-sequence"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["restaurant", "sequence"], name="audit_unique_sequence"
            ),
        ]
        indexes = [
            models.Index(fields=["restaurant", "occurred_at"], name="audit_restaurant_time"),
            models.Index(
                fields=["restaurant", "action", "sequence"], name="audit_restaurant_action"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events are only removed by retention pruning.")


class AuditAnchor(TenantModel):
    """Where a pruned chain continues: the last pruned event's sequence and hash."""

    sequence = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)
    pruned_count = models.PositiveIntegerField()
    pruned_at = models.DateTimeField()

    restaurant = models.ForeignKey(Restaurant, on_delete=models.PROTECT, related_name="+")
    # Part of the chain: it stays for as long as the events after it.
    purged_with_restaurant: ClassVar[bool] = False

    class Meta(TenantModel.Meta):
        ordering = ["-sequence"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(fields=["restaurant", "sequence"], name="audit_anchor_unique"),
        ]

    def __str__(self) -> str:
        return f"anchor at #{self.sequence}"
