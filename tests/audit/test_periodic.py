"""The audit log's retention runs as the periodic job ``audit-prune``."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit import registry
from audit import services as audit
from audit.models import AuditEvent
from tenants.context import tenant_context

pytestmark = pytest.mark.django_db(transaction=True)


def write(restaurant, count):
    with tenant_context(restaurant):
        for _ in range(count):
            audit.record(registry.STAFF_UPDATED, actor=audit.SYSTEM, target_type="t", target_id=1)


def sequences(restaurant):
    with tenant_context(restaurant):
        return list(AuditEvent.objects.order_by("sequence").values_list("sequence", "action"))


def run_job():
    out = io.StringIO()
    call_command("run_periodic", "audit-prune", stdout=out)
    return out.getvalue()


def test_events_past_retention_are_pruned_once(restaurants, privileged_sql):
    ours, theirs = restaurants
    write(ours, 4)
    write(theirs, 2)
    old = timezone.now() - timedelta(days=400)
    for restaurant in restaurants:
        privileged_sql(
            "UPDATE audit_auditevent SET occurred_at = %s WHERE restaurant_id = %s "
            "AND sequence <= 2",
            [old, restaurant.pk],
        )

    assert "audit-prune: done (pruned 4 events)" in run_job()

    updated = registry.STAFF_UPDATED.name
    assert sequences(ours) == [(3, updated), (4, updated), (5, "audit.pruned")]
    assert sequences(theirs) == [(3, "audit.pruned")]
    # Nothing more is due: a second run changes nothing.
    assert "audit-prune: done (pruned 0 events)" in run_job()
    assert sequences(ours) == [(3, updated), (4, updated), (5, "audit.pruned")]


def test_recent_events_are_kept(restaurants):
    write(restaurants[0], 3)

    assert "audit-prune: done (pruned 0 events)" in run_job()
    assert [s for s, _ in sequences(restaurants[0])] == [1, 2, 3]
