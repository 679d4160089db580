"""Promotion codes redeemed through place_order: every rule, the release on cancellation, and
the caps under concurrent checkouts on real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from customers.models import Customer
from nordkestrel.errors import InvalidInput
from orders.checkout_request import parse_checkout
from orders.models import Order
from orders.placement import place_order, quote
from orders.services import order_cancel
from promotions.models import Promotion, Redemption
from staff.auth import Actor
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import make_shop, open_all_week, run_concurrently

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday, open 08:00-22:00


@pytest.fixture
def shop(restaurants):
    ours, theirs = restaurants
    open_all_week(ours)
    open_all_week(theirs)
    return make_shop(ours)


def promotion(restaurant: Restaurant, code: str = "SUMMER10", **fields) -> Promotion:
    fields.setdefault("kind", Promotion.Kind.PERCENT)
    fields.setdefault("value", 10)
    with tenant_context(restaurant):
        return Promotion.objects.create(code=code, **fields)


def body(ids: dict, code: str = "SUMMER10", **fields) -> dict:
    data = {
        "lines": [{"item_id": ids["burger"], "quantity": 1, "modifier_ids": [ids["regular"]]}],
        "name": "Ada",
        "email": "ada@example.com",
        "promotion_code": code,
    }
    data.update(fields)
    return data


def place(restaurant: Restaurant, data: dict, key: str | None = None, now: datetime = NOW):
    with tenant_context(restaurant):
        order, _ = place_order(
            restaurant=restaurant,
            request=parse_checkout(data, restaurant.zone),
            idempotency_key=key,
            now=now,
        )
    return order


def refused(restaurant: Restaurant, data: dict, now: datetime = NOW) -> str:
    with pytest.raises(InvalidInput) as error:
        place(restaurant, data, now=now)
    assert (error.value.status, error.value.attr) == (400, "promotion_code")
    return error.value.code


def fresh(restaurant: Restaurant, promo: Promotion) -> Promotion:
    with tenant_context(restaurant):
        return Promotion.objects.get(pk=promo.pk)


def redemptions(restaurant: Restaurant) -> list[Redemption]:
    with tenant_context(restaurant):
        return list(Redemption.objects.select_related("customer", "order").order_by("id"))


def cancel(restaurant: Restaurant, manager, order: Order) -> None:
    with tenant_context(restaurant):
        order_cancel(actor=Actor(member=manager), order_id=order.pk, reason="diner called")


def orders_in(restaurant: Restaurant) -> int:
    with tenant_context(restaurant):
        return Order.objects.count()


class TestFinding:
    @pytest.mark.parametrize("typed", ["SUMMER10", "summer10", "Summer10", "  sUmMeR10  "])
    def test_codes_match_case_insensitively(self, shop, restaurants, typed):
        ours = restaurants[0]
        promotion(ours, code="Summer10")
        order = place(ours, body(shop, code=typed))
        assert (order.discount, order.total) == (120, 1080)
        assert order.promotion_code == "Summer10", "stored as the restaurant wrote it"

    def test_an_unknown_code_is_refused_and_writes_nothing(self, shop, restaurants):
        ours = restaurants[0]
        promotion(ours)
        assert refused(ours, body(shop, code="WINTER10")) == "promotion_unknown"
        assert orders_in(ours) == 0
        with tenant_context(ours):
            assert Customer.objects.count() == 0

    def test_an_inactive_code_is_refused(self, shop, restaurants):
        ours = restaurants[0]
        promo = promotion(ours, active=False)
        assert refused(ours, body(shop)) == "promotion_unknown"
        assert fresh(ours, promo).redemption_count == 0

    def test_another_restaurants_code_is_unknown_here(self, shop, restaurants):
        ours, theirs = restaurants
        promo = promotion(theirs)
        assert refused(ours, body(shop)) == "promotion_unknown"
        assert fresh(theirs, promo).redemption_count == 0


class TestValidityWindow:
    def test_not_started_until_its_start(self, shop, restaurants):
        ours = restaurants[0]
        promotion(ours, starts_at=NOW + timedelta(seconds=1))
        assert refused(ours, body(shop)) == "promotion_not_started"
        assert place(ours, body(shop), now=NOW + timedelta(seconds=1)).discount == 120

    def test_expired_from_its_end(self, shop, restaurants):
        ours = restaurants[0]
        promotion(ours, ends_at=NOW)
        assert refused(ours, body(shop)) == "promotion_expired"
        order = place(ours, body(shop), now=NOW - timedelta(microseconds=1))
        assert order.discount == 120

    def test_inside_the_window(self, shop, restaurants):
        ours = restaurants[0]
        promotion(ours, starts_at=NOW - timedelta(days=1), ends_at=NOW + timedelta(days=1))
        assert place(ours, body(shop)).discount == 120


class TestAmounts:
    def test_the_minimum_subtotal_is_inclusive(self, shop, restaurants):
        ours = restaurants[0]
        promotion(ours, min_subtotal=1500)
        assert refused(ours, body(shop)) == "promotion_minimum"  # 12.00
        line = {"item_id": shop["burger"], "quantity": 1, "modifier_ids": [shop["large"]]}
        large = body(shop, lines=[line])
        assert place(ours, large).discount == 150

    def test_a_percent_discount_rounds_half_up_before_tax(self, shop, restaurants):
        ours = restaurants[0]
        ours.tax_rate, ours.prices_include_tax = Decimal("10"), False
        ours.save()
        promotion(ours, value=15)
        order = place(ours, body(shop, lines=[
            {"item_id": shop["fries"], "quantity": 1},
            {"item_id": shop["soda"], "quantity": 2},
        ]))  # fmt: skip
        assert order.subtotal == 1050
        assert order.discount == 158, "15% of 10.50 = 1.575"
        assert order.tax == 89, "10% of 8.92 = 0.892"
        assert order.total == 1050 - 158 + 89

    def test_a_fixed_discount(self, shop, restaurants):
        ours = restaurants[0]
        promotion(ours, kind=Promotion.Kind.FIXED, value=500)
        order = place(ours, body(shop, tip=100))
        assert (order.subtotal, order.discount, order.tip, order.total) == (1200, 500, 100, 800)

    def test_a_fixed_discount_above_the_subtotal_is_capped(self, shop, restaurants):
        ours = restaurants[0]
        promotion(ours, kind=Promotion.Kind.FIXED, value=5000)
        order = place(ours, body(shop, tip=100))
        assert (order.discount, order.total) == (1200, 100)
        (redemption,) = redemptions(ours)
        assert redemption.discount == 1200

    def test_the_quote_applies_the_same_rules(self, shop, restaurants):
        ours = restaurants[0]
        promotion(ours, value=25)
        with tenant_context(ours):
            priced = quote(ours, parse_checkout(body(shop), ours.zone).lines,
                           promotion_code="summer10", now=NOW)  # fmt: skip
        assert (priced.discount, priced.total, priced.promotion_code) == (300, 900, "SUMMER10")
        assert orders_in(ours) == 0


class TestCaps:
    def test_the_total_cap(self, shop, restaurants):
        ours = restaurants[0]
        promo = promotion(ours, max_redemptions=2)
        place(ours, body(shop, email="a@example.com"))
        place(ours, body(shop, email="b@example.com"))
        assert refused(ours, body(shop, email="c@example.com")) == "promotion_used_up"
        assert fresh(ours, promo).redemption_count == 2
        assert orders_in(ours) == 2
        assert place(ours, body(shop, email="c@example.com", code="")).discount == 0

    def test_the_per_customer_cap(self, shop, restaurants):
        ours = restaurants[0]
        promo = promotion(ours, per_customer_limit=2)
        place(ours, body(shop))
        place(ours, body(shop, email="ADA@example.com"))
        assert refused(ours, body(shop, email="Ada@Example.com")) == "promotion_customer_limit"
        assert place(ours, body(shop, email="bo@example.com")).discount == 120
        assert fresh(ours, promo).redemption_count == 3

    def test_first_order_only(self, shop, restaurants):
        ours = restaurants[0]
        promotion(ours, first_order_only=True)
        assert place(ours, body(shop)).discount == 120
        assert refused(ours, body(shop)) == "promotion_first_order_only"
        place(ours, body(shop, email="bo@example.com", code=""))
        assert refused(ours, body(shop, email="bo@example.com")) == "promotion_first_order_only"

    def test_first_order_only_ignores_a_cancelled_first_order(self, shop, restaurants, roster):
        ours = restaurants[0]
        promotion(ours, first_order_only=True)
        first = place(ours, body(shop, code=""))
        cancel(ours, roster[("ours", "manager")], first)
        assert place(ours, body(shop)).discount == 120

    def test_first_order_only_is_per_restaurant(self, shop, restaurants):
        ours, theirs = restaurants
        place(theirs, body(make_shop(theirs), code=""))
        promotion(ours, first_order_only=True)
        assert place(ours, body(shop)).discount == 120


class TestRedemption:
    def test_the_redemption_row(self, shop, restaurants):
        ours = restaurants[0]
        promo = promotion(ours)
        order = place(ours, body(shop))
        (redemption,) = redemptions(ours)
        assert redemption.promotion_id == promo.pk
        assert redemption.order_id == order.pk
        assert redemption.customer.email == "ada@example.com"
        assert redemption.customer_id == order.customer_id
        assert (redemption.discount, redemption.counted) == (120, True)
        assert fresh(ours, promo).redemption_count == 1

    def test_a_replayed_checkout_redeems_once(self, shop, restaurants):
        ours = restaurants[0]
        promo = promotion(ours)
        first = place(ours, body(shop), key="k")
        assert place(ours, body(shop), key="k").pk == first.pk
        assert fresh(ours, promo).redemption_count == 1
        assert len(redemptions(ours)) == 1

    def test_a_cancelled_order_gives_its_use_back(self, shop, restaurants, roster):
        ours = restaurants[0]
        promo = promotion(ours, max_redemptions=1, per_customer_limit=1)
        order = place(ours, body(shop))
        assert refused(ours, body(shop, email="bo@example.com")) == "promotion_used_up"
        cancel(ours, roster[("ours", "manager")], order)
        assert fresh(ours, promo).redemption_count == 0
        (redemption,) = redemptions(ours)
        assert redemption.counted is False
        again = place(ours, body(shop))
        assert again.discount == 120, "the same diner may use it again"
        assert fresh(ours, promo).redemption_count == 1
        assert [r.counted for r in redemptions(ours)] == [False, True]

    def test_cancelling_an_order_without_a_code_changes_no_count(self, shop, restaurants, roster):
        ours = restaurants[0]
        promo = promotion(ours)
        place(ours, body(shop))
        plain = place(ours, body(shop, email="bo@example.com", code=""))
        cancel(ours, roster[("ours", "manager")], plain)
        assert fresh(ours, promo).redemption_count == 1


def _checkout(restaurant_id: int, data: dict, barrier: threading.Barrier):
    """One diner's request: its own restaurant row, context and connection."""

    def run():
        restaurant = Restaurant.objects.get(pk=restaurant_id)
        with tenant_context(restaurant):
            request = parse_checkout(data, restaurant.zone)
            barrier.wait(timeout=60)
            order, _ = place_order(
                restaurant=restaurant, request=request, idempotency_key=None, now=NOW
            )
        return order.pk

    return run


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_redemptions_of_a_code_capped_at_ten(restaurants):
    ours = restaurants[0]
    open_all_week(ours)
    ids = make_shop(ours)
    promo = promotion(ours, max_redemptions=10)
    barrier = threading.Barrier(50)
    calls = [
        _checkout(ours.pk, body(ids, code="summer10", email=f"diner{n}@example.com"), barrier)
        for n in range(50)
    ]
    results = run_concurrently(*calls)

    placed = [r for r in results if isinstance(r, int)]
    refusals = [r for r in results if isinstance(r, InvalidInput)]
    assert len(placed) == 10, results
    assert len(refusals) == 40, [r for r in results if not isinstance(r, int | InvalidInput)]
    assert {(r.code, r.attr) for r in refusals} == {("promotion_used_up", "promotion_code")}
    with tenant_context(ours):
        assert Promotion.objects.get(pk=promo.pk).redemption_count == 10
        assert Redemption.objects.count() == 10
        assert set(Redemption.objects.values_list("order_id", flat=True)) == set(placed)
        assert Order.objects.count() == 10
        assert set(Order.objects.values_list("discount", flat=True)) == {120}
        assert sorted(Order.objects.values_list("number", flat=True)) == list(range(1, 11))


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_redemptions_by_one_diner_with_a_per_customer_cap_of_one(restaurants):
    ours = restaurants[0]
    open_all_week(ours)
    ids = make_shop(ours)
    promo = promotion(ours, per_customer_limit=1)
    barrier = threading.Barrier(10)
    calls = [
        _checkout(ours.pk, body(ids, email="Ada@Example.com" if n % 2 else "ada@example.com"),
                  barrier)
        for n in range(10)
    ]  # fmt: skip
    results = run_concurrently(*calls)

    placed = [r for r in results if isinstance(r, int)]
    refusals = [r for r in results if isinstance(r, InvalidInput)]
    assert len(placed) == 1, results
    assert [r.code for r in refusals] == ["promotion_customer_limit"] * 9, results
    with tenant_context(ours):
        assert Promotion.objects.get(pk=promo.pk).redemption_count == 1
        assert Redemption.objects.count() == 1
        assert Order.objects.count() == 1
        assert Customer.objects.count() == 1
