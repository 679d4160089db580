"""place_order end to end on real PostgreSQL: what is written, what is refused, and how often."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Customer
from menus import services as menus
from menus.models import Item, StorefrontMenuState
from nordkestrel.errors import ConflictError, InvalidInput
from orders.checkout_request import parse_checkout
from orders.models import Order, OrderLine, Status, StatusChange
from orders.placement import place_order
from orders.pricing import StaleCart
from orders.services import order_cancel
from orders.slots import SlotFull, checkout_options
from staff.auth import Actor
from tenants.context import tenant_context
from tenants.models import OpeningException, Restaurant
from tests.factories import make_shop, open_all_week, run_concurrently

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday; open 08:00-22:00, 20 min lead


@pytest.fixture
def shop(restaurants):
    ours, theirs = restaurants
    open_all_week(ours)
    open_all_week(theirs)
    return make_shop(ours)


def body(ids: dict, **fields) -> dict:
    data = {
        "lines": [{"item_id": ids["burger"], "quantity": 1, "modifier_ids": [ids["regular"]]}],
        "name": "Ada Lovelace",
        "email": "ada@example.com",
    }
    data.update(fields)
    return data


def place(restaurant: Restaurant, data: dict, key: str | None = "key-1", now: datetime = NOW):
    with tenant_context(restaurant):
        return place_order(
            restaurant=restaurant,
            request=parse_checkout(data, restaurant.zone),
            idempotency_key=key,
            now=now,
        )


def written(restaurant: Restaurant) -> tuple[int, ...]:
    with tenant_context(restaurant):
        return (
            Order.objects.count(),
            OrderLine.objects.count(),
            StatusChange.objects.count(),
            Customer.objects.count(),
        )


def customers(restaurant: Restaurant) -> list[Customer]:
    with tenant_context(restaurant):
        return list(Customer.objects.order_by("email"))


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=UTC)


def act(member) -> Actor:
    return Actor(member=member)


class TestTheOrder:
    def test_the_order_and_a_snapshot_of_its_lines(self, shop, restaurants):
        ours = restaurants[0]
        data = body(shop, phone="+358 40 1234567", tip=100, lines=[
            {"item_id": shop["burger"], "quantity": 2,
             "modifier_ids": [shop["large"], shop["cheese"]], "note": "no onion"},
            {"item_id": shop["fries"], "quantity": 1},
        ])  # fmt: skip
        order, created = place(ours, data)
        assert created is True
        assert order.number == 1
        assert order.status == Status.PLACED
        assert order.fulfilment == "pickup" and order.payment_method == "in_person"
        assert (order.contact_name, order.contact_email, order.contact_phone) == (
            "Ada Lovelace", "ada@example.com", "+358 40 1234567",
        )  # fmt: skip
        assert order.scheduled_for is None, "as soon as possible"
        assert order.promised_at == NOW + timedelta(minutes=20)
        assert order.slot_start == at(12, 15)
        assert order.placed_at == NOW
        assert (order.subtotal, order.discount, order.tax, order.tip) == (
            2 * (1200 + 300 + 150) + 450, 0, 0, 100,
        )  # fmt: skip
        assert order.total == 3750 + 100
        assert order.currency == "EUR" and order.menu_version == 1
        with tenant_context(ours):
            lines = list(order.lines.values_list("name", "modifiers", "unit_price", "quantity",
                                                 "line_total", "note"))  # fmt: skip
            changes = list(order.status_changes.values_list("from_status", "to_status",
                                                            "actor_label", "at"))  # fmt: skip
        assert lines == [
            ("Burger", [
                {"id": shop["large"], "group": "Size", "name": "Large", "price_delta": 300},
                {"id": shop["cheese"], "group": "Extras", "name": "Cheese", "price_delta": 150},
            ], 1650, 2, 3300, "no onion"),
            ("Fries", [], 450, 1, 450, ""),
        ]  # fmt: skip
        assert changes == [("", "placed", "diner", NOW)]

    def test_the_snapshot_outlives_menu_changes(self, shop, restaurants):
        ours = restaurants[0]
        order, _ = place(ours, body(shop))
        with tenant_context(ours):
            burger = Item.objects.get(pk=shop["burger"])
            menus.item_save(actor=act(shop["owner"]), item=burger, name="Smash", price=1900)
            menus.publish(actor=act(shop["owner"]))
            line = OrderLine.objects.get(order=order)
        assert (line.name, line.unit_price) == ("Burger", 1200)

    def test_tax_on_top_is_charged_from_the_restaurants_rate(self, shop, restaurants):
        ours = restaurants[0]
        ours.tax_rate, ours.prices_include_tax = Decimal("12.5"), False
        ours.save()
        data = body(shop, lines=[{"item_id": shop["soda"], "quantity": 1}])
        data["lines"][0]["quantity"] = 3  # 900 * 12.5% = 112.5
        order, _ = place(ours, data)
        assert (order.subtotal, order.tax, order.total) == (900, 113, 1013)
        assert order.tax_rate == Decimal("12.5") and order.prices_include_tax is False

    def test_order_numbers_count_per_restaurant(self, shop, restaurants):
        ours, theirs = restaurants
        theirs_shop = make_shop(theirs)
        numbers = [
            place(ours, body(shop), key="a")[0].number,
            place(theirs, body(theirs_shop), key="a")[0].number,
            place(ours, body(shop), key="b")[0].number,
            place(ours, body(shop), key="c")[0].number,
            place(theirs, body(theirs_shop), key="b")[0].number,
        ]
        assert numbers == [1, 1, 2, 3, 2]


class TestCustomers:
    def test_one_customer_per_email_case_insensitively(self, shop, restaurants):
        ours = restaurants[0]
        place(ours, body(shop, email="Ada@Example.COM", phone="+358 40 1"), key="a")
        place(ours, body(shop, email="ada@example.com", name="Ada L."), key="b")
        (customer,) = customers(ours)
        assert customer.email == "ada@example.com"
        assert customer.name == "Ada Lovelace", "the first checkout's name"
        assert customer.phone == "+358 40 1"
        with tenant_context(ours):
            assert set(Order.objects.values_list("customer_id", flat=True)) == {customer.pk}

    def test_a_strangers_checkout_with_a_known_email_rewrites_nothing(self, shop, restaurants):
        ours = restaurants[0]
        place(ours, body(shop, phone="+358 40 1"), key="a")
        with tenant_context(ours):
            Customer.objects.update(
                marketing_consent=True, consent_at=NOW, consent_source="checkout"
            )
        (before,) = customers(ours)
        later = NOW + timedelta(hours=1)
        order, _ = place(
            ours, body(shop, name="Mallory", phone="+1 555 0100", marketing_consent=False),
            key="b", now=later,
        )  # fmt: skip
        (after,) = customers(ours)
        assert (after.name, after.phone) == ("Ada Lovelace", "+358 40 1")
        assert (after.marketing_consent, after.consent_at, after.consent_source) == (
            True, NOW, "checkout",
        ), "an unticked box withdraws nothing"  # fmt: skip
        assert after.created_at == before.created_at
        # The order keeps what was typed with it, for the staff handling it.
        assert (order.contact_name, order.contact_phone) == ("Mallory", "+1 555 0100")
        assert order.customer_id == after.pk

    def test_a_strangers_tick_never_opts_a_known_email_in(self, shop, restaurants):
        ours = restaurants[0]
        place(ours, body(shop), key="a")
        ticked_at = NOW + timedelta(hours=1)
        place(ours, body(shop, name="Mallory", marketing_consent=True), key="b", now=ticked_at)
        (customer,) = customers(ours)
        assert customer.name == "Ada Lovelace"
        assert (customer.marketing_consent, customer.consent_at, customer.consent_source) == (
            False, None, "",
        )  # fmt: skip
        assert customer.consent_requested_at == ticked_at, "a request, for the email to confirm"

    def test_a_phone_is_filled_in_only_where_none_is_known(self, shop, restaurants):
        ours = restaurants[0]
        place(ours, body(shop), key="a")
        place(ours, body(shop, phone="+358 40 2"), key="b")
        place(ours, body(shop, phone="+358 40 3"), key="c")
        (customer,) = customers(ours)
        assert customer.phone == "+358 40 2"

    def test_the_same_email_elsewhere_is_another_customer(self, shop, restaurants):
        ours, theirs = restaurants
        place(ours, body(shop), key="a")
        place(theirs, body(make_shop(theirs), name="Ada at theirs"), key="a")
        (mine,), (their,) = customers(ours), customers(theirs)
        assert mine.pk != their.pk
        assert (mine.name, their.name) == ("Ada Lovelace", "Ada at theirs")
        assert (mine.order_count, their.order_count) == (1, 1)

    def test_a_ticked_box_records_a_request_never_consent(self, shop, restaurants):
        ours = restaurants[0]
        first, _ = place(ours, body(shop), key="a")
        (customer,) = customers(ours)
        assert customer.consent_requested_at is None and first.consent_requested is False
        ticked_at = NOW + timedelta(minutes=5)
        second, _ = place(ours, body(shop, marketing_consent=True), key="b", now=ticked_at)
        (customer,) = customers(ours)
        assert second.consent_requested is True
        assert customer.consent_requested_at == ticked_at
        assert (customer.marketing_consent, customer.consent_at, customer.consent_source) == (
            False, None, "",
        )  # fmt: skip
        third, _ = place(ours, body(shop), key="c", now=NOW + timedelta(hours=1))
        (customer,) = customers(ours)
        assert third.consent_requested is False
        assert customer.consent_requested_at == ticked_at, "a blank box withdraws no request"
        asked_again = NOW + timedelta(hours=2)
        place(ours, body(shop, marketing_consent=True), key="d", now=asked_again)
        (customer,) = customers(ours)
        assert customer.consent_requested_at == asked_again
        assert customer.marketing_consent is False

    def test_a_consenting_customers_tick_changes_nothing(self, shop, restaurants):
        ours = restaurants[0]
        place(ours, body(shop), key="a")
        with tenant_context(ours):
            Customer.objects.update(
                marketing_consent=True, consent_at=NOW, consent_source="checkout"
            )
        place(ours, body(shop, marketing_consent=True), key="b", now=NOW + timedelta(hours=1))
        (customer,) = customers(ours)
        assert (customer.marketing_consent, customer.consent_at) == (True, NOW)
        assert customer.consent_requested_at is None

    def test_stats_follow_orders_and_cancellations(self, shop, restaurants, roster):
        ours = restaurants[0]
        place(ours, body(shop), key="a")
        later = NOW + timedelta(hours=2)
        second, _ = place(ours, body(shop, lines=[
            {"item_id": shop["fries"], "quantity": 2}]), key="b", now=later)  # fmt: skip
        (customer,) = customers(ours)
        assert customer.order_count == 2
        assert customer.total_spent == 1200 + 900
        assert (customer.first_order_at, customer.last_order_at) == (NOW, later)
        with tenant_context(ours):
            order_cancel(actor=act(roster[("ours", "manager")]), order_id=second.pk, reason="x")
        (customer,) = customers(ours)
        assert (customer.order_count, customer.total_spent) == (1, 1200)
        assert (customer.first_order_at, customer.last_order_at) == (NOW, NOW)


class TestIdempotency:
    def test_the_same_key_twice_is_one_order(self, shop, restaurants):
        ours = restaurants[0]
        order, created = place(ours, body(shop), key="double-click")
        again, created_again = place(ours, body(shop), key="double-click")
        assert (created, created_again) == (True, False)
        assert again.pk == order.pk
        assert written(ours) == (1, 1, 1, 1)
        (customer,) = customers(ours)
        assert customer.order_count == 1

    def test_the_same_key_with_another_body_is_refused(self, shop, restaurants):
        ours = restaurants[0]
        place(ours, body(shop), key="k")
        with pytest.raises(ConflictError) as refused:
            place(ours, body(shop, tip=50), key="k")
        assert refused.value.code == "idempotency_key_reused"
        assert refused.value.status == 409
        assert written(ours)[0] == 1

    def test_a_key_is_per_restaurant(self, shop, restaurants):
        ours, theirs = restaurants
        place(ours, body(shop), key="k")
        _, created = place(theirs, body(make_shop(theirs)), key="k")
        assert created is True

    def test_a_replay_after_the_menu_changed_returns_the_order(self, shop, restaurants):
        """A retry of a placed checkout answers with its order, even though the same cart
        would now be refused (the item sold out since)."""
        ours = restaurants[0]
        order, _ = place(ours, body(shop), key="retry-after-86")
        with tenant_context(ours):
            menus.set_sold_out(actor=act(shop["owner"]), obj=Item.objects.get(pk=shop["burger"]),
                               sold_out=True)  # fmt: skip
        with pytest.raises(StaleCart):
            place(ours, body(shop), key="a-new-key")
        again, created = place(ours, body(shop), key="retry-after-86")
        assert (again.pk, created) == (order.pk, False)
        assert written(ours) == (1, 1, 1, 1)

    def test_a_replay_after_its_slot_filled_returns_the_order(self, shop, restaurants):
        ours = restaurants[0]
        ours.orders_per_slot = 1
        ours.save(update_fields=["orders_per_slot"])
        order, _ = place(ours, body(shop), key="only-one")
        again, created = place(ours, body(shop), key="only-one")
        assert (again.pk, created) == (order.pk, False)
        with pytest.raises(SlotFull):
            place(ours, body(shop, email="grace@example.com"), key="another")
        assert written(ours)[0] == 1

    def test_a_reused_key_with_a_refused_body_says_the_key_was_reused(self, shop, restaurants):
        ours = restaurants[0]
        place(ours, body(shop), key="k")
        with pytest.raises(ConflictError) as refused:
            place(ours, body(shop, lines=[{"item_id": shop["burger"] + 999, "quantity": 1}]),
                  key="k")  # fmt: skip
        assert refused.value.code == "idempotency_key_reused"

    def test_a_refused_checkout_with_a_fresh_key_is_refused(self, shop, restaurants):
        ours = restaurants[0]
        with pytest.raises(StaleCart):
            place(ours, body(shop, lines=[{"item_id": shop["burger"] + 999, "quantity": 1}]),
                  key="fresh")  # fmt: skip
        assert written(ours) == (0, 0, 0, 0)

    def test_without_a_key_every_submission_is_an_order(self, shop, restaurants):
        ours = restaurants[0]
        first, _ = place(ours, body(shop), key=None)
        second, _ = place(ours, body(shop), key=None)
        assert first.pk != second.pk
        assert written(ours)[0] == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_checkouts_with_one_key_make_one_order(restaurants):
    ours = restaurants[0]
    open_all_week(ours)
    ids = make_shop(ours)
    barrier = threading.Barrier(6)

    def checkout():
        restaurant = Restaurant.objects.get(pk=ours.pk)
        with tenant_context(restaurant):
            request = parse_checkout(body(ids), restaurant.zone)
            barrier.wait(timeout=20)
            order, created = place_order(
                restaurant=restaurant, request=request, idempotency_key="retry", now=NOW
            )
        return order.pk, created

    results = run_concurrently(*[checkout] * 6)
    assert all(isinstance(r, tuple) for r in results), results
    assert len({pk for pk, _ in results}) == 1
    assert sorted(created for _, created in results) == [False] * 5 + [True]
    assert written(ours) == (1, 1, 1, 1)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_an_order_is_placed_in_one_of_its_own(restaurants):
    """The storefront API's way: no savepoint, one BEGIN and one COMMIT, and a retry (even
    one the menu would now refuse) still finds the first order."""
    ours = restaurants[0]
    open_all_week(ours)
    ids = make_shop(ours)
    request = parse_checkout(body(ids), ours.zone)
    with CaptureQueriesContext(connection) as queries:
        order, created = place_order(
            restaurant=ours, request=request, idempotency_key="own", now=NOW
        )
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert created is True
    assert "SAVEPOINT" not in statements
    assert connection.in_atomic_block is False
    assert written(ours) == (1, 1, 1, 1)
    with tenant_context(ours):
        menus.set_sold_out(actor=act(ids["owner"]), obj=Item.objects.get(pk=ids["burger"]),
                           sold_out=True)  # fmt: skip
    again, created = place_order(restaurant=ours, request=request, idempotency_key="own", now=NOW)
    assert (again.pk, created) == (order.pk, False)
    with pytest.raises(StaleCart):
        place_order(restaurant=ours, request=request, idempotency_key="new", now=NOW)
    assert written(ours) == (1, 1, 1, 1)


@pytest.mark.django_db(transaction=True)
def test_concurrent_checkouts_of_one_restaurant_number_without_gaps_or_twins(restaurants):
    """Orders are written with 0 and numbered just before commit (the number's uniqueness is
    checked at commit): twelve at once get 1..12, each once, and none reads 0."""
    ours = restaurants[0]
    open_all_week(ours)
    ids = make_shop(ours)
    barrier = threading.Barrier(12)

    def checkout(n: int):
        def run():
            request = parse_checkout(body(ids, email=f"diner{n}@example.com"), ours.zone)
            barrier.wait(timeout=20)
            order, _ = place_order(restaurant=ours, request=request, idempotency_key=f"n{n}",
                                   now=NOW)  # fmt: skip
            return order.number

        return run

    numbers = run_concurrently(*[checkout(n) for n in range(12)])
    assert sorted(numbers) == list(range(1, 13)), numbers
    with tenant_context(ours):
        stored = sorted(Order.objects.values_list("number", flat=True))
    assert stored == list(range(1, 13))


def test_placing_inside_another_restaurants_context_is_refused(shop, restaurants):
    from tenants.context import TenantMismatch

    ours, theirs = restaurants
    with tenant_context(theirs), pytest.raises(TenantMismatch):
        place_order(
            restaurant=ours, request=parse_checkout(body(shop), ours.zone),
            idempotency_key="k", now=NOW,
        )  # fmt: skip


class TestSlots:
    def test_a_full_slot_is_refused_and_no_longer_offered(self, shop, restaurants):
        ours = restaurants[0]
        ours.orders_per_slot = 2
        ours.save()
        one = "2026-06-01T13:00:00+00:00"
        place(ours, body(shop, scheduled_for=one), key="a")
        place(ours, body(shop, scheduled_for=one, email="bo@example.com"), key="b")
        with tenant_context(ours):
            assert at(13) not in checkout_options(ours, now=NOW).times
            assert at(13, 15) in checkout_options(ours, now=NOW).times
        with pytest.raises(SlotFull) as refused:
            place(ours, body(shop, scheduled_for=one, email="cy@example.com"), key="c")
        assert (refused.value.status, refused.value.code) == (409, "slot_full")
        offered = refused.value.body()["available_times"]
        assert offered and "2026-06-01T13:00:00+00:00" not in offered
        assert offered[0] == "2026-06-01T12:30:00+00:00", "the first slot after the lead time"
        assert written(ours)[0] == 2

    def test_a_cancelled_order_frees_its_place(self, shop, restaurants, roster):
        ours = restaurants[0]
        ours.orders_per_slot = 1
        ours.save()
        slot = "2026-06-01T13:00:00+00:00"
        order, _ = place(ours, body(shop, scheduled_for=slot), key="a")
        with tenant_context(ours):
            order_cancel(actor=act(roster[("ours", "manager")]), order_id=order.pk)
        _, created = place(ours, body(shop, scheduled_for=slot, email="bo@example.com"), key="b")
        assert created

    def test_asap_counts_against_its_slot(self, shop, restaurants):
        ours = restaurants[0]
        ours.orders_per_slot = 1
        ours.save()
        place(ours, body(shop), key="a")  # promised 12:20, slot 12:15
        with tenant_context(ours):
            assert checkout_options(ours, now=NOW).asap is None
        with pytest.raises(SlotFull):
            place(ours, body(shop, email="bo@example.com"), key="b")

    def test_without_a_capacity_a_slot_takes_any_number(self, shop, restaurants):
        ours = restaurants[0]
        for n in range(4):
            place(ours, body(shop, scheduled_for="2026-06-01T13:00:00Z"), key=f"k{n}")
        assert written(ours)[0] == 4


class TestWhen:
    def test_asap_is_refused_when_closed(self, shop, restaurants):
        ours = restaurants[0]
        with pytest.raises(InvalidInput) as refused:
            place(ours, body(shop), now=at(23))
        assert (refused.value.code, refused.value.attr) == ("closed", "scheduled_for")
        assert "opens" in refused.value.detail

    def test_asap_is_refused_when_the_kitchen_would_finish_after_closing(self, shop, restaurants):
        with pytest.raises(InvalidInput) as refused:
            place(restaurants[0], body(shop), now=at(21, 45))
        assert refused.value.code == "closed"

    def test_a_later_time_can_be_chosen_while_closed(self, shop, restaurants):
        order, _ = place(restaurants[0], body(shop, scheduled_for="2026-06-02T09:00:00Z"),
                         now=at(23))  # fmt: skip
        assert order.scheduled_for == order.promised_at == datetime(2026, 6, 2, 9, tzinfo=UTC)

    def test_a_scheduled_time_on_a_slot_is_taken(self, shop, restaurants):
        ours = restaurants[0]
        ours.timezone = "Europe/Helsinki"
        ours.save()
        order, _ = place(ours, body(shop, scheduled_for="2026-06-01T18:30"))  # local time
        assert order.promised_at == datetime(2026, 6, 1, 15, 30, tzinfo=UTC)
        assert order.slot_start == order.promised_at

    @pytest.mark.parametrize(
        ("when", "why"),
        [
            ("2026-06-01T13:05:00Z", "not on a 15-minute slot"),
            ("2026-06-01T13:00:30Z", "seconds off a slot"),
            ("2026-06-01T12:15:00Z", "inside the preparation time"),
            ("2026-06-01T11:00:00Z", "in the past"),
            ("2026-06-01T22:15:00Z", "after closing"),
            ("2026-06-02T07:00:00Z", "before opening"),
            ("2026-06-03T12:00:00Z", "a closed exception date"),
            ("2026-07-01T12:00:00Z", "too far ahead"),
            ("0001-01-01T00:00:00+01:00", "the beginning of time"),
            ("9999-12-31T23:45:00-01:00", "the end of time"),
        ],
    )
    def test_times_that_cannot_be_offered_are_refused(self, shop, restaurants, when, why):
        ours = restaurants[0]
        with tenant_context(ours):
            OpeningException.objects.create(date=date(2026, 6, 3), closed=True)
        with pytest.raises(InvalidInput) as refused:
            place(ours, body(shop, scheduled_for=when))
        assert (refused.value.code, refused.value.attr) == ("unavailable_time", "scheduled_for")
        assert written(ours) == (0, 0, 0, 0), why

    def test_a_special_opening_on_an_exception_date_is_honoured(self, shop, restaurants):
        ours = restaurants[0]
        with tenant_context(ours):
            OpeningException.objects.create(
                date=date(2026, 6, 2), closed=False, opens=time(6), closes=time(7)
            )
        order, _ = place(ours, body(shop, scheduled_for="2026-06-02T06:30:00Z"))
        assert order.promised_at == datetime(2026, 6, 2, 6, 30, tzinfo=UTC)
        with pytest.raises(InvalidInput):
            place(ours, body(shop, scheduled_for="2026-06-02T12:00:00Z"), key="other")


class TestDelivery:
    ADDRESS = {"line1": "Main street 1", "postal_code": "00100", "city": "Helsinki"}

    def deliver(self, shop, **fields):
        return body(shop, fulfilment="delivery", phone="+358 40 1", address=self.ADDRESS,
                    **fields)  # fmt: skip

    def test_delivery_is_refused_when_not_offered(self, shop, restaurants):
        ours = restaurants[0]
        with pytest.raises(InvalidInput) as refused:
            place(ours, self.deliver(shop))
        assert refused.value.attr == "fulfilment"
        assert written(ours) == (0, 0, 0, 0)

    def test_pickup_is_refused_when_not_offered(self, shop, restaurants):
        ours = restaurants[0]
        ours.pickup_enabled = False
        ours.save()
        with pytest.raises(InvalidInput) as refused:
            place(ours, body(shop))
        assert refused.value.attr == "fulfilment"

    @pytest.mark.parametrize(
        ("change", "attr"),
        [
            ({"address": None}, "address.line1"),
            ({"address": {"line1": "Main street 1", "city": "Helsinki"}}, "address.postal_code"),
            ({"address": "Main street 1"}, "address"),
            ({"phone": ""}, "phone"),
        ],
    )
    def test_an_address_and_phone_are_required(self, shop, restaurants, change, attr):
        ours = restaurants[0]
        ours.delivery_enabled = True
        ours.save()
        with pytest.raises(InvalidInput) as refused:
            place(ours, {**self.deliver(shop), **change})
        assert refused.value.attr == attr

    def test_the_delivery_minimum_and_fee(self, shop, restaurants):
        ours = restaurants[0]
        ours.delivery_enabled, ours.delivery_minimum, ours.delivery_fee = True, 1500, 390
        ours.tax_rate, ours.prices_include_tax = Decimal("10"), False
        ours.save()
        with pytest.raises(InvalidInput) as refused:
            place(ours, self.deliver(shop))  # a 12.00 burger
        assert (refused.value.code, refused.value.attr) == ("delivery_minimum", "fulfilment")
        assert "15.00 EUR" in refused.value.detail
        assert written(ours) == (0, 0, 0, 0)
        large = [{"item_id": shop["burger"], "quantity": 1, "modifier_ids": [shop["large"]]}]
        order, _ = place(ours, self.deliver(shop, lines=large))
        assert (order.subtotal, order.tax, order.delivery_fee) == (1500, 150, 390)
        assert order.total == 1500 + 150 + 390, "the fee is added and not taxed"
        assert order.delivery_address == {**self.ADDRESS, "line2": ""}
        pickup, _ = place(ours, body(shop), key="pickup")
        assert pickup.delivery_fee == 0 and pickup.delivery_address == {}


class TestStaleCart:
    def test_an_item_sold_out_after_adding_refuses_with_a_refreshed_cart(self, shop, restaurants):
        ours = restaurants[0]
        with tenant_context(ours):
            menus.set_sold_out(actor=act(shop["owner"]), obj=Item.objects.get(pk=shop["fries"]),
                               sold_out=True)  # fmt: skip
        data = body(shop, lines=[
            {"item_id": shop["burger"], "quantity": 1, "modifier_ids": [shop["regular"]]},
            {"item_id": shop["fries"], "quantity": 2},
        ])  # fmt: skip
        with pytest.raises(StaleCart) as refused:
            place(ours, data)
        error = refused.value.body()
        assert (refused.value.status, error["code"]) == (409, "stale_cart")
        assert error["problems"] == [{
            "line": 1, "item_id": shop["fries"], "code": "sold_out",
            "detail": "Fries is sold out.",
        }]  # fmt: skip
        assert [line["name"] for line in error["cart"]["lines"]] == ["Burger"]
        assert error["cart"]["total"] == 1200
        assert written(ours) == (0, 0, 0, 0), "nothing written, not even the customer"

    def test_a_sold_out_option_refuses_the_line(self, shop, restaurants):
        ours = restaurants[0]
        with tenant_context(ours):
            from menus.models import Modifier

            large = Modifier.objects.get(pk=shop["large"])
            menus.set_sold_out(actor=act(shop["owner"]), obj=large, sold_out=True)
        lines = [{"item_id": shop["burger"], "quantity": 1, "modifier_ids": [shop["large"]]}]
        with pytest.raises(StaleCart) as refused:
            place(ours, body(shop, lines=lines))
        assert refused.value.problems[0]["code"] == "sold_out"

    def test_a_published_price_change_refuses_with_the_new_prices(self, shop, restaurants):
        ours = restaurants[0]
        line = {"item_id": shop["burger"], "quantity": 2, "modifier_ids": [shop["regular"]]}
        seen = body(shop, lines=[{**line, "unit_price": 1200}])
        with tenant_context(ours):
            burger = Item.objects.get(pk=shop["burger"])
            menus.item_save(actor=act(shop["owner"]), item=burger, price=1350)
            menus.publish(actor=act(shop["owner"]))
        with pytest.raises(StaleCart) as refused:
            place(ours, seen)
        error = refused.value.body()
        assert [p["code"] for p in error["problems"]] == ["price_changed"]
        assert "13.50 EUR" in error["problems"][0]["detail"]
        assert error["cart"]["lines"][0]["unit_price"] == 1350
        assert error["cart"]["subtotal"] == 2700 and error["cart"]["menu_version"] == 2
        assert written(ours) == (0, 0, 0, 0)
        # The refreshed cart goes through as it is.
        seen["lines"][0]["unit_price"] = 1350
        order, _ = place(ours, seen)
        assert order.total == 2700

    def test_a_total_changed_by_a_publish_refuses(self, shop, restaurants):
        ours = restaurants[0]
        with tenant_context(ours):
            burger = Item.objects.get(pk=shop["burger"])
            menus.item_save(actor=act(shop["owner"]), item=burger, price=1350)
            menus.publish(actor=act(shop["owner"]))
        with pytest.raises(StaleCart) as refused:
            place(ours, body(shop, expected_total=1200))  # what the diner was shown
        error = refused.value.body()
        assert error["problems"] == [{"code": "total_changed", "detail": "The total changed."}]
        assert "13.50 EUR" in error["detail"]
        assert (error["cart"]["total"], error["cart"]["lines"][0]["unit_price"]) == (1350, 1350)
        assert written(ours) == (0, 0, 0, 0)
        order, _ = place(ours, body(shop, expected_total=1350))
        assert order.total == 1350

    def test_an_item_dropped_from_the_menu_is_unavailable(self, shop, restaurants):
        ours = restaurants[0]
        with tenant_context(ours):
            menus.delete(actor=act(shop["owner"]), obj=Item.objects.get(pk=shop["soda"]))
            menus.publish(actor=act(shop["owner"]))
        with pytest.raises(StaleCart) as refused:
            place(ours, body(shop, lines=[{"item_id": shop["soda"], "quantity": 1}]))
        assert refused.value.problems[0]["code"] == "unavailable"
        assert refused.value.body()["cart"]["lines"] == []

    def test_an_unpublished_menu_refuses(self, shop, restaurants):
        ours = restaurants[0]
        with tenant_context(ours):
            StorefrontMenuState.objects.update(live_version=None)
        with pytest.raises(StaleCart) as refused:
            place(ours, body(shop))
        assert refused.value.problems == [
            {"code": "menu_unavailable", "detail": "The menu is not published."}
        ]
        assert written(ours) == (0, 0, 0, 0)

    def test_a_menu_never_published_refuses(self, shop, restaurants):
        theirs = restaurants[1]
        with pytest.raises(StaleCart) as refused:
            place(theirs, body(shop))
        assert refused.value.status == 409
        assert refused.value.body()["cart"]["lines"] == []
        assert written(theirs) == (0, 0, 0, 0)

    def test_another_restaurants_items_are_not_on_this_menu(self, shop, restaurants):
        ours, theirs = restaurants
        theirs_shop = make_shop(theirs)
        with pytest.raises(StaleCart) as refused:
            place(ours, body(theirs_shop, lines=[{"item_id": theirs_shop["fries"], "quantity": 1}]))
        assert refused.value.problems[0]["code"] == "unavailable"
        assert written(ours) == (0, 0, 0, 0) and written(theirs) == (0, 0, 0, 0)


def _line(shop, **fields):
    return {"item_id": shop["fries"], "quantity": 1, **fields}


BAD_INPUT = [
    (lambda s: {"lines": "fries"}, "lines"),
    (lambda s: {"lines": {"item_id": s["fries"]}}, "lines"),
    (lambda s: {"lines": None}, "lines"),
    (lambda s: {"lines": [_line(s)] * 51}, "lines"),
    (lambda s: {"lines": ["fries"]}, "lines.0"),
    (lambda s: {"lines": [_line(s, price=1)]}, "lines.0"),
    (lambda s: {"lines": [_line(s, quantity=-1)]}, "lines.0.quantity"),
    (lambda s: {"lines": [_line(s, quantity=0)]}, "lines.0.quantity"),
    (lambda s: {"lines": [_line(s, quantity=100)]}, "lines.0.quantity"),
    (lambda s: {"lines": [_line(s, quantity=10**30)]}, "lines.0.quantity"),
    (lambda s: {"lines": [_line(s, quantity=1.5)]}, "lines.0.quantity"),
    (lambda s: {"lines": [_line(s, quantity=True)]}, "lines.0.quantity"),
    (lambda s: {"lines": [_line(s, quantity="--1")]}, "lines.0.quantity"),
    (lambda s: {"lines": [_line(s, quantity="²")]}, "lines.0.quantity"),
    (lambda s: {"lines": [_line(s, quantity="9" * 5000)]}, "lines.0.quantity"),
    (lambda s: {"lines": [_line(s, item_id=2**70)]}, "lines.0.item_id"),
    (lambda s: {"lines": [_line(s, item_id=-5)]}, "lines.0.item_id"),
    (lambda s: {"lines": [_line(s, item_id=None)]}, "lines.0.item_id"),
    (lambda s: {"lines": [_line(s, modifier_ids="1")]}, "lines.0.modifier_ids"),
    (lambda s: {"lines": [_line(s, modifier_ids=[2**63])]}, "lines.0.modifier_ids"),
    (lambda s: {"lines": [_line(s, unit_price=-1)]}, "lines.0.unit_price"),
    (lambda s: {"lines": [_line(s, note="\x00")]}, "lines.0.note"),
    (lambda s: {"lines": [_line(s, note="n" * 201)]}, "lines.0.note"),
    (lambda s: {"lines": []}, "lines"),
    (lambda s: {"name": "Ada\x00"}, "name"),
    (lambda s: {"name": "   "}, "name"),
    (lambda s: {"name": "n" * 121}, "name"),
    (lambda s: {"name": ["Ada"]}, "name"),
    (lambda s: {"email": "not-an-email"}, "email"),
    (lambda s: {"email": "ada@example.com\x00"}, "email"),
    (lambda s: {"email": None}, "email"),
    (lambda s: {"phone": "call me"}, "phone"),
    (lambda s: {"scheduled_for": "tomorrow"}, "scheduled_for"),
    (lambda s: {"scheduled_for": "2026-13-45T10:00"}, "scheduled_for"),
    (lambda s: {"scheduled_for": "2026-06-01T25:00"}, "scheduled_for"),
    (lambda s: {"scheduled_for": 1780000000}, "scheduled_for"),
    (lambda s: {"tip": -1}, "tip"),
    (lambda s: {"tip": "lots"}, "tip"),
    (lambda s: {"tip": 10**12}, "tip"),
    (lambda s: {"tip": 1201}, "tip"),
    (lambda s: {"expected_total": -5}, "expected_total"),
    (lambda s: {"fulfilment": "drone"}, "fulfilment"),
    (lambda s: {"fulfilment": ["pickup"]}, "fulfilment"),
    (lambda s: {"marketing_consent": "yes please"}, "marketing_consent"),
    (lambda s: {"promotion_code": "X" * 33}, "promotion_code"),
    (lambda s: {"promotion_code": 123}, "promotion_code"),
    (lambda s: {"promotion_code": "NOSUCH"}, "promotion_code"),
    (lambda s: {"payment_method": "card"}, "payment_method"),
    (lambda s: {"payment_method": "bitcoin"}, "payment_method"),
]


@pytest.mark.parametrize(("change", "attr"), BAD_INPUT)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(shop, restaurants, change, attr):
    ours = restaurants[0]
    data = {**body(shop), **change(shop)}
    with pytest.raises(InvalidInput) as refused:
        place(ours, data)
    assert refused.value.status == 400
    assert refused.value.attr == attr
    assert refused.value.body()["attr"] == attr
    assert written(ours) == (0, 0, 0, 0)


def test_an_order_too_large_to_store_is_a_400(shop, restaurants):
    ours = restaurants[0]
    with tenant_context(ours):
        fries = Item.objects.get(pk=shop["fries"])
        menus.item_save(actor=act(shop["owner"]), item=fries, price=10_000_000)
        menus.publish(actor=act(shop["owner"]))
    data = body(shop, lines=[{"item_id": shop["fries"], "quantity": 99}] * 3)
    with pytest.raises(InvalidInput) as refused:
        place(ours, data)
    assert refused.value.attr == "lines"
    assert written(ours) == (0, 0, 0, 0)


class TestQueries:
    def measure(self, restaurant, data, key):
        with tenant_context(restaurant):
            request = parse_checkout(data, restaurant.zone)
            with CaptureQueriesContext(connection) as queries:
                place_order(restaurant=restaurant, request=request, idempotency_key=key, now=NOW)
        return len(queries)

    def test_placing_costs_the_same_for_one_line_and_twenty(self, shop, restaurants):
        ours = restaurants[0]
        self.measure(ours, body(shop, email="warm@example.com"), "warm-up")
        one = self.measure(ours, body(shop, email="one@example.com"), "one")
        twenty_lines = [
            {"item_id": shop[name], "quantity": n % 3 + 1,
             "modifier_ids": [shop["large"], shop["egg"]] if name == "burger" else []}
            for n, name in enumerate(["burger", "fries", "soda", "fries"] * 5)
        ]  # fmt: skip
        twenty = self.measure(ours, body(shop, email="twenty@example.com", lines=twenty_lines),
                              "twenty")  # fmt: skip
        assert twenty == one
        # The menu (with the hours revision), the customer (with its stats), the number, the
        # order, its lines, its first status and the email task, inside one savepoint (2).
        assert one <= 9, one
        with tenant_context(ours):
            assert OrderLine.objects.filter(order__idempotency_key="twenty").count() == 20

    def test_a_throttled_slot_and_a_code_add_a_bounded_few(self, shop, restaurants):
        from promotions.models import Promotion

        ours = restaurants[0]
        ours.orders_per_slot = 50
        ours.save()
        with tenant_context(ours):
            Promotion.objects.create(code="TEN", kind=Promotion.Kind.PERCENT, value=10)
        self.measure(ours, body(shop, email="warm@example.com"), "warm-up")
        one = self.measure(ours, body(shop, email="one@example.com", promotion_code="ten"), "one")
        many = self.measure(
            ours,
            body(shop, email="many@example.com", promotion_code="TEN",
                 lines=[{"item_id": shop["soda"], "quantity": 2}] * 20),
            "many",
        )  # fmt: skip
        assert many == one
        # + finding the code, counting its use, the redemption row, the slot lock and count
        assert one <= 17, one

    def test_a_replayed_checkout_is_bounded_and_writes_nothing(self, shop, restaurants):
        """A new order looks no key up; a replay finds its order when the insert meets the
        key (the attempt is rolled back), so it costs a placing plus one lookup."""
        ours = restaurants[0]
        new = self.measure(ours, body(shop), "k")
        replay = self.measure(ours, body(shop), "k")
        assert replay <= new + 2, (new, replay)
        assert written(ours) == (1, 1, 1, 1)
