"""The webhooks' housekeeping, run by ``manage.py run_periodic``."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from nordkestrel.periodic import periodic
from tenants.context import tenant_bypass, tenant_context
from tenants.models import Restaurant
from webhooks import health
from webhooks.models import Attempt, Delivery

PRUNE_BATCH_SIZE = 5000


@periodic("webhooks-failing")
def failing_endpoints() -> str:
    """Warn a day ahead, then disable endpoints whose every delivery failed for 5 days."""
    warned, disabled = health.check_failing()
    return f"warned about {warned}, disabled {disabled} endpoints"


@periodic("webhooks-prune")
def prune_log() -> str:
    """Deliveries and their attempts older than the event log's retention go."""
    cutoff = timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS)
    with tenant_bypass():
        restaurant_ids = sorted(
            set(
                Delivery.unscoped.filter(created_at__lt=cutoff, next_attempt_at__isnull=True)
                .values_list("restaurant_id", flat=True)
                .distinct()
            )
        )
    deleted = 0
    for restaurant_id in restaurant_ids:
        while True:
            with tenant_context(Restaurant(pk=restaurant_id)):
                ids = list(
                    Delivery.objects.filter(created_at__lt=cutoff, next_attempt_at__isnull=True)
                    .order_by("pk")
                    .values_list("pk", flat=True)[:PRUNE_BATCH_SIZE]
                )
                Attempt.objects.filter(delivery_id__in=ids).delete()
                _removed, _ = Delivery.objects.filter(pk__in=ids).delete()
            deleted += len(ids)
            if len(ids) < PRUNE_BATCH_SIZE:
                break
    return f"pruned {deleted} deliveries"
