"""The event log is tenant data: each restaurant sees only its own events, and they go with
the restaurant when it is purged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from events.models import Delivery, Event
from nordkestrel import events
from restaurants import purge
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.support.events import ping, recorded

pytestmark = pytest.mark.usefixtures("transactional_db")


def raw_event_restaurants() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT restaurant_id FROM events_event UNION SELECT restaurant_id FROM events_delivery"
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture
def logged(restaurants):
    for restaurant in restaurants:
        with tenant_context(restaurant):
            events.publish(ping(restaurant.pk))
    recorded.reset()
    return restaurants


def test_a_restaurant_sees_only_its_own_events_and_deliveries(logged):
    ours, theirs = logged
    for restaurant in (ours, theirs):
        with tenant_context(restaurant):
            assert {e.restaurant_id for e in Event.objects.all()} == {restaurant.pk}
            assert {d.restaurant_id for d in Delivery.objects.all()} == {restaurant.pk}
            # Below the manager: row-level security.
            assert raw_event_restaurants() == {restaurant.pk}
    assert raw_event_restaurants() == set(), "nothing without a restaurant"


def test_a_restaurant_cannot_change_another_restaurants_events(logged):
    ours, theirs = logged
    with tenant_context(ours), connection.cursor() as cursor:
        cursor.execute("UPDATE events_event SET payload = '{}'::jsonb")
        assert cursor.rowcount == 1
        cursor.execute("DELETE FROM events_delivery")
        # The event's subscribers: the tests' two and the webhooks' fan-out.
        assert cursor.rowcount == 3
    with tenant_context(theirs):
        assert Event.objects.get().payload != {}
        assert Delivery.objects.count() == 3


def test_the_purge_removes_the_restaurants_events_and_deliveries(logged):
    ours, theirs = logged
    past = timezone.now() - timedelta(days=1)
    Restaurant.objects.filter(pk=ours.pk).update(
        status=Restaurant.Status.PENDING_DELETION, deletion_requested_at=past, purge_after=past
    )

    record = purge.purge_restaurant(ours.pk)

    assert record is not None
    assert record.row_counts["events.event"] == 1
    assert record.row_counts["events.delivery"] == 3
    with tenant_context(ours):
        assert (Event.objects.count(), Delivery.objects.count()) == (0, 0)
    with tenant_context(theirs):
        assert (Event.objects.count(), Delivery.objects.count()) == (1, 3)
