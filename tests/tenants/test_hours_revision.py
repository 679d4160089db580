"""The opening-hours revision, and the schedule checkout keeps by it.

Checkout keeps each restaurant's schedule in memory and rebuilds it only when the
restaurant's ``hours_revision`` moves. These tests pin that every way the hours can change
moves it, that nothing can move it back, and that a checkout right after a change obeys the
new hours.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from menus.storefront import live_menu
from nordkestrel.errors import InvalidInput
from orders.checkout_request import parse_checkout
from orders.placement import place_order
from tenants.context import tenant_context
from tenants.hours import Schedule
from tenants.models import OpeningException, OpeningHours, Restaurant
from tests.factories import make_shop, open_all_week

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday


def revision(restaurant: Restaurant) -> int:
    return Restaurant.objects.values_list("hours_revision", flat=True).get(pk=restaurant.pk)


def test_every_change_to_the_hours_moves_the_revision(restaurants):
    ours, theirs = restaurants
    seen = [revision(ours)]
    with tenant_context(ours):
        hours = OpeningHours.objects.create(weekday=0, opens=time(8), closes=time(22))
        seen.append(revision(ours))
        OpeningHours.objects.filter(pk=hours.pk).update(closes=time(21))
        seen.append(revision(ours))
        exception = OpeningException.objects.create(date=date(2026, 6, 2), closed=True)
        seen.append(revision(ours))
        exception.closed = False
        exception.opens, exception.closes = time(10), time(14)
        exception.save()
        seen.append(revision(ours))
        exception.delete()
        seen.append(revision(ours))
        OpeningHours.objects.all().delete()
        seen.append(revision(ours))
    assert seen == sorted(set(seen)), f"each change takes a new, higher revision: {seen}"
    assert revision(theirs) == 0, "another restaurant's revision stays"


def test_a_stale_save_cannot_take_the_revision_back(restaurants):
    ours = restaurants[0]
    stale = Restaurant.objects.get(pk=ours.pk)
    open_all_week(ours)
    current = revision(ours)
    assert current > stale.hours_revision
    stale.name = "Renamed"
    stale.save()
    assert revision(ours) == current
    assert Restaurant.objects.get(pk=ours.pk).name == "Renamed"


def test_a_rolled_back_change_never_lends_its_revision_to_a_later_one(restaurants):
    ours = restaurants[0]
    with transaction.atomic():
        with tenant_context(ours):
            OpeningHours.objects.create(weekday=0, opens=time(8), closes=time(9))
            inside = revision(ours)
        transaction.set_rollback(True)
    open_all_week(ours)
    assert revision(ours) > inside


def test_the_live_menu_reads_the_revision_in_its_one_query(restaurants):
    ours = restaurants[0]
    make_shop(ours)
    open_all_week(ours)
    with tenant_context(ours):
        live_menu(ours.pk)  # this process parses the document once
        with CaptureQueriesContext(connection) as queries:
            menu = live_menu(ours.pk)
    assert len(queries) == 1
    assert menu is not None and menu.hours_revision == revision(ours)


def test_a_kept_schedule_is_used_until_the_revision_moves(restaurants):
    ours = restaurants[0]
    open_all_week(ours)
    ours.refresh_from_db()
    with tenant_context(ours):
        current = revision(ours)
        first = Schedule.at_revision(ours, current, now=NOW)
        with CaptureQueriesContext(connection) as queries:
            again = Schedule.at_revision(ours, current, now=NOW)
        assert again is first and len(queries) == 0
        OpeningException.objects.create(date=NOW.date(), closed=True)
        changed = Schedule.at_revision(ours, revision(ours), now=NOW)
    assert changed is not first
    assert first.open_period_at(NOW) is not None
    assert changed.open_period_at(NOW) is None


def test_a_checkout_right_after_closing_for_the_day_is_refused(restaurants):
    """Through the checkout service with one restaurant instance throughout, as a long-lived
    process would hold it: the schedule kept from the first order must not take the second."""
    ours = restaurants[0]
    open_all_week(ours)
    ids = make_shop(ours)
    data = {
        "lines": [{"item_id": ids["fries"], "quantity": 1}],
        "name": "Ada Lovelace",
        "email": "ada@example.com",
    }

    def place(key: str) -> None:
        with tenant_context(ours):
            place_order(
                restaurant=ours,
                request=parse_checkout(data, ours.zone),
                idempotency_key=key,
                now=NOW,
            )

    place("before")
    with tenant_context(ours):
        OpeningException.objects.create(date=NOW.date(), closed=True)
    with pytest.raises(InvalidInput) as refused:
        place("after")
    assert refused.value.code == "closed"


def test_the_checkout_reads_the_restaurant_and_its_live_menu_in_one_query(restaurants):
    from menus.storefront import active_restaurant_with_live_menu

    ours, theirs = restaurants
    make_shop(ours)
    open_all_week(ours)
    live_menu(ours.pk)  # this process parses the document once
    with CaptureQueriesContext(connection) as queries:
        found = active_restaurant_with_live_menu(ours.pk)
    assert len(queries) == 1
    assert found is not None
    restaurant, menu = found
    assert restaurant.pk == ours.pk and restaurant.name == ours.name
    assert menu == live_menu(ours.pk)
    assert menu is not None and menu.hours_revision == revision(ours)
    # No live menu: the restaurant alone. Not active: nothing.
    assert active_restaurant_with_live_menu(theirs.pk) == (theirs, None)
    Restaurant.objects.filter(pk=ours.pk).update(status=Restaurant.Status.SUSPENDED)
    assert active_restaurant_with_live_menu(ours.pk) is None


@pytest.mark.django_db(transaction=True)
def test_one_statement_moves_each_restaurant_it_touched_once(restaurants):
    from tenants.context import tenant_bypass

    ours, theirs = restaurants

    def sequence() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_value FROM tenants_hours_revision_seq")
            return cursor.fetchone()[0]

    open_all_week(ours)  # seven rows in one INSERT
    before = sequence()
    open_all_week(theirs)
    assert sequence() == before + 1
    with tenant_bypass():
        ours_before, theirs_before = revision(ours), revision(theirs)
        OpeningHours.objects.all().update(closes=time(21))  # both restaurants, one statement
    assert sequence() == before + 3
    assert revision(ours) > ours_before and revision(theirs) > theirs_before
