"""The diner's pages on a storefront host, as a browser without JavaScript uses them."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.core import signing
from django.test import Client, override_settings
from django.urls import reverse

from customers.models import Customer
from menus import services as menus
from menus.models import Item
from orders.checkout_request import parse_checkout
from orders.models import Order
from orders.placement import place_order
from orders.pricing import CartLine
from promotions.models import Promotion
from staff.auth import Actor
from storefront import cart as carts
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import make_shop, open_all_week

pytestmark = pytest.mark.django_db

# A Monday. Ours is in Helsinki (UTC+3 in June): 15:00 there, open 08:00-22:00, 20 min lead.
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NIGHT = datetime(2026, 6, 1, 20, 30, tzinfo=UTC)  # 23:30 in Helsinki: closed
HOST = "ours.localhost"


def url(name: str, *args) -> str:
    return reverse(f"storefront:{name}", args=args, urlconf="storefront.urls")


@pytest.fixture
def clock():
    with mock.patch("django.utils.timezone.now", return_value=NOW) as now:
        yield now


@pytest.fixture
def ours(restaurants) -> Restaurant:
    restaurant = restaurants[0]
    restaurant.timezone = "Europe/Helsinki"
    restaurant.address_line1 = "Esplanadi 1"
    restaurant.city = "Helsinki"
    restaurant.save()
    return restaurant


@pytest.fixture
def shop(ours, clock) -> dict:
    open_all_week(ours)
    ids = make_shop(ours)
    with tenant_context(ours):
        from menus.models import ModifierGroup

        ids["size"] = ModifierGroup.objects.get(name="Size").pk
        ids["extras"] = ModifierGroup.objects.get(name="Extras").pk
    return ids


@pytest.fixture
def diner() -> Client:
    return Client(HTTP_HOST=HOST)


def add(client: Client, ids: dict, item: str = "burger", quantity: int = 1, **choices):
    data: dict = {"quantity": str(quantity)}
    if item == "burger":
        data[f"group-{ids['size']}"] = choices.get("size", ids["regular"])
        data[f"group-{ids['extras']}"] = choices.get("extras", [])
    data.update(choices.get("extra_fields", {}))
    return client.post(url("item", ids[item]), data)


def form_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html)
    assert match, f"no {name} in the form"
    return match.group(1)


def checkout_data(client: Client, **fields) -> dict:
    html = client.get(url("checkout")).content.decode()
    data = {
        "expected_total": form_value(html, "expected_total"),
        "checkout_token": form_value(html, "checkout_token"),
        "promotion_code": form_value(html, "promotion_code"),
        "fulfilment": "pickup",
        "scheduled_for": "asap",
        "tip": "0",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "payment_method": "in_person",
        "action": "place",
    }
    data.update(fields)
    return data


def orders(restaurant: Restaurant) -> list[Order]:
    with tenant_context(restaurant):
        return list(Order.objects.prefetch_related("lines"))


def owner_actor(ids: dict) -> Actor:
    return Actor(member=ids["owner"])


def cookie_cart(client: Client, restaurant: Restaurant) -> carts.Cart:
    raw = client.cookies[carts.COOKIE_NAME].value

    class Request:
        COOKIES = {carts.COOKIE_NAME: raw}

    return carts.load(Request, restaurant.pk)  # type: ignore[arg-type]


def place_directly(restaurant: Restaurant, ids: dict, key: str, **fields) -> Order:
    body = {
        "lines": [{"item_id": ids["fries"], "quantity": 1}],
        "name": "Grace",
        "email": "grace@example.com",
        **fields,
    }
    with tenant_context(restaurant):
        order, _ = place_order(
            restaurant=restaurant,
            request=parse_checkout(body, restaurant.zone),
            idempotency_key=key,
            now=NOW,
        )
    return order


# --- The restaurant page -----------------------------------------------------------------


class TestRestaurantPage:
    def test_open_now_with_the_menu(self, shop, diner):
        response = diner.get("/")
        html = response.content.decode()
        assert response.status_code == 200
        assert "Open now" in html and ">22:00<" in html  # Helsinki time, not UTC
        assert "<address>Esplanadi 1, Helsinki</address>" in html
        for name in ("Burger", "Fries", "Soda"):
            assert name in html
        assert "12.00" in html and "4.50" in html
        assert f'href="{url("item", shop["burger"])}"' in html

    def test_closed_says_when_it_opens(self, shop, diner, clock):
        clock.return_value = NIGHT
        html = diner.get("/").content.decode()
        assert "Closed now" in html
        assert "Opens tomorrow at" in html and ">08:00<" in html
        assert 'datetime="2026-06-02T08:00:00+03:00"' in html

    def test_a_sold_out_item_is_shown_but_cannot_be_ordered(self, shop, diner):
        with tenant_context(shop["owner"].restaurant):
            fries = Item.objects.get(pk=shop["fries"])
            menus.set_sold_out(actor=owner_actor(shop), obj=fries, sold_out=True)
        html = diner.get("/").content.decode()
        entry = re.search(rf'data-item="{shop["fries"]}".*?</li>', html, re.S)
        assert entry and "Sold out" in entry.group(0)
        assert "<form" not in entry.group(0) and "href=" not in entry.group(0)
        response = add(diner, shop, "fries")
        assert response.status_code == 400
        assert "Fries is sold out." in response.content.decode()
        assert carts.COOKIE_NAME not in response.cookies

    def test_nothing_published_is_a_friendly_page(self, restaurants, clock):
        response = Client(HTTP_HOST="theirs.localhost").get("/")
        assert response.status_code == 200
        assert "Not taking orders online" in response.content.decode()

    def test_unknown_host_is_404(self, shop):
        response = Client(HTTP_HOST="nobody.localhost").get("/")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")

    def test_suspended_restaurant_is_404_even_while_its_host_is_cached(self, shop, diner, ours):
        assert diner.get("/").status_code == 200  # the host lookup is now cached
        Restaurant.objects.filter(pk=ours.pk).update(status=Restaurant.Status.SUSPENDED)
        assert diner.get("/").status_code == 404
        assert diner.get(url("cart")).status_code == 404

    def test_a_few_queries_whatever_the_menu(self, shop, diner, django_assert_max_num_queries):
        diner.get("/")  # warms this process's copy of the menu
        # The restaurant, the tenant context (4 in a test's transaction), the live menu and
        # the opening hours (2).
        with django_assert_max_num_queries(8):
            assert diner.get("/").status_code == 200


# --- Item options --------------------------------------------------------------------------


class TestItemOptions:
    def test_the_form_states_the_rules(self, shop, diner):
        html = diner.get(url("item", shop["burger"])).content.decode()
        assert "<legend>Size <span" in html and "Required: choose 1." in html
        assert "Optional: choose up to 2." in html
        assert f'type="radio" id="modifier-{shop["large"]}"' in html
        assert f'type="checkbox" id="modifier-{shop["cheese"]}"' in html
        assert '<label for="quantity">' in html and '<label for="note">' in html

    def test_a_missing_required_choice_is_refused_next_to_its_group(self, shop, diner):
        response = add(diner, shop, size="")
        html = response.content.decode()
        assert response.status_code == 400
        error = re.search(rf'id="group-{shop["size"]}".*?</fieldset>', html, re.S)
        assert error and "Choose at least 1 of Size for Burger." in error.group(0)
        assert carts.COOKIE_NAME not in response.cookies

    def test_too_many_extras_are_refused(self, shop, diner):
        extras = [shop["cheese"], shop["bacon"], shop["egg"]]
        response = add(diner, shop, extras=extras)
        html = response.content.decode()
        assert response.status_code == 400
        error = re.search(rf'id="group-{shop["extras"]}".*?</fieldset>', html, re.S)
        assert error and "Choose at most 2 of Extras for Burger." in error.group(0)
        assert html.count(" checked") >= 3, "the diner's choices are kept"

    def test_a_valid_choice_goes_to_the_cart(self, shop, diner, ours):
        response = add(
            diner, shop, quantity=2, size=shop["large"], extras=[shop["cheese"]],
            extra_fields={"note": "No onion"},
        )  # fmt: skip
        assert response.status_code == 303
        assert response["Location"] == url("cart")
        cart = cookie_cart(diner, ours)
        assert cart.lines == [
            CartLine(
                item_id=shop["burger"],
                quantity=2,
                modifier_ids=(shop["large"], shop["cheese"]),
                note="No onion",
                seen_unit_price=1200 + 300 + 150,
            )
        ]
        html = diner.get(url("cart")).content.decode()
        assert "Added 2 × Burger to your cart." in html  # noqa: RUF001
        assert "33.00 EUR" in html and "Note: No onion" in html

    @pytest.mark.parametrize("quantity", ["0", "100", "two", ""])
    def test_a_bad_quantity_is_refused_at_the_field(self, shop, diner, quantity):
        response = add(diner, shop, extra_fields={"quantity": quantity})
        assert response.status_code == 400
        assert 'id="quantity-error"' in response.content.decode()

    def test_options_of_another_item_are_refused(self, shop, diner):
        response = diner.post(
            url("item", shop["fries"]),
            {"quantity": "1", f"group-{shop['size']}": shop["large"]},
        )
        assert response.status_code == 303, "fields of groups the item has not are ignored"
        response = add(diner, shop, size="not-a-number")
        assert response.status_code == 400

    def test_unknown_item_is_404(self, shop, diner):
        assert diner.get(url("item", 999999)).status_code == 404
        assert diner.post(url("item", 999999), {"quantity": "1"}).status_code == 404


# --- The cart ------------------------------------------------------------------------------


class TestCart:
    def test_prices_come_from_the_server_not_the_cookie(self, shop, diner, ours):
        forged = carts.Cart(
            ours.pk,
            lines=[
                CartLine(shop["burger"], 2, (shop["regular"],), seen_unit_price=1),
                CartLine(shop["soda"], 1, seen_unit_price=1),
            ],
        )
        diner.cookies[carts.COOKIE_NAME] = forged.encode()
        html = diner.get(url("cart")).content.decode()
        assert "27.00 EUR" in html  # 2 x 12.00 + 3.00
        assert "Burger now costs 12.00 EUR (was 0.01)." in html
        assert [line.seen_unit_price for line in cookie_cart(diner, ours).lines] == [1200, 300]
        response = diner.post(url("checkout"), checkout_data(diner))
        assert response.status_code == 303
        (order,) = orders(ours)
        assert order.total == 2700

    def test_a_changed_unit_price_at_checkout_is_refused_with_the_refreshed_cart(
        self, shop, diner, ours
    ):
        add(diner, shop, "soda")
        data = checkout_data(diner)
        cheap = carts.Cart(
            ours.pk,
            lines=[CartLine(shop["soda"], 1, seen_unit_price=1)],
            token=data["checkout_token"],
        )
        diner.cookies[carts.COOKIE_NAME] = cheap.encode()
        response = diner.post(url("checkout"), data)
        assert response.status_code == 409
        assert "Soda now costs 3.00 EUR (was 0.01)." in response.content.decode()
        assert orders(ours) == []

    @pytest.mark.parametrize(
        "value",
        ["garbage", "", "a" * 5000],
    )
    def test_a_garbled_cookie_is_an_empty_cart(self, shop, diner, value):
        diner.cookies[carts.COOKIE_NAME] = value
        response = diner.get(url("cart"))
        assert response.status_code == 200
        assert "Your cart is empty." in response.content.decode()

    @pytest.mark.parametrize(
        "payload",
        [
            [],
            {"lines": "x"},
            {"lines": [{"item_id": "x", "quantity": 1}]},
            {"lines": [{"item_id": 1, "quantity": 1, "price": 1}]},
            {"lines": [{"item_id": 1, "quantity": 1}] * 51},
            {"lines": [], "token": "has spaces"},
            {"lines": [], "token": 5, "code": ["x"]},
        ],
    )
    def test_a_signed_cookie_of_the_wrong_shape_is_an_empty_cart(self, shop, diner, ours, payload):
        diner.cookies[carts.COOKIE_NAME] = signing.dumps(
            payload, salt=f"storefront.cart:{ours.pk}", compress=True
        )
        response = diner.get(url("cart"))
        assert response.status_code == 200
        assert "Your cart is empty." in response.content.decode()

    def test_another_storefronts_cart_does_not_verify_here(self, shop, diner, restaurants):
        theirs = restaurants[1]
        foreign = carts.Cart(theirs.pk, lines=[CartLine(shop["soda"], 1)])
        diner.cookies[carts.COOKIE_NAME] = foreign.encode()
        assert "Your cart is empty." in diner.get(url("cart")).content.decode()

    def test_the_cookie_is_host_only_http_only_and_lax(self, shop, diner, settings):
        settings.SESSION_COOKIE_SECURE = True
        response = add(diner, shop, "soda")
        cookie = response.cookies[carts.COOKIE_NAME]
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["secure"]
        assert not cookie["domain"]

    def test_a_full_cart_refuses_one_more_line_and_stays_as_it_was(self, shop, diner, ours):
        full = carts.Cart(ours.pk)
        while len(full.encode()) < carts.MAX_COOKIE_VALUE - 150:
            full.add(CartLine(shop["soda"], 1, note=secrets.token_hex(100)))
        diner.cookies[carts.COOKIE_NAME] = full.encode()
        response = add(diner, shop, "fries", extra_fields={"note": secrets.token_hex(100)})
        assert response.status_code == 400
        assert "Your cart is full." in response.content.decode()
        assert carts.COOKIE_NAME not in response.cookies
        assert cookie_cart(diner, ours).lines == full.lines

    def test_change_quantity_and_remove(self, shop, diner, ours):
        add(diner, shop, "soda")
        add(diner, shop, "fries")
        diner.post(url("cart"), {"action": "quantity", "line": "0", "quantity": "3"})
        assert "9.00" in diner.get(url("cart")).content.decode()
        diner.post(url("cart"), {"action": "remove", "line": "0"})
        cart = cookie_cart(diner, ours)
        assert [(line.item_id, line.quantity) for line in cart.lines] == [(shop["fries"], 1)]
        for bad in ({"action": "quantity", "line": "0", "quantity": "x"}, {"action": "nope"}):
            assert diner.post(url("cart"), bad).status_code == 400
        response = diner.post(url("cart"), {"action": "remove", "line": "7"})
        assert response.status_code == 303

    def test_a_sold_out_item_makes_the_cart_stale(self, shop, diner, ours):
        add(diner, shop, "soda")
        add(diner, shop, "fries")
        with tenant_context(ours):
            fries = Item.objects.get(pk=shop["fries"])
            menus.set_sold_out(actor=owner_actor(shop), obj=fries, sold_out=True)
        response = diner.get(url("cart"))
        html = response.content.decode()
        assert "Your cart has changed" in html and "Fries is sold out." in html
        assert "3.00 EUR" in html
        assert [line.item_id for line in cookie_cart(diner, ours).lines] == [shop["soda"]]

    def test_a_price_change_after_publishing_makes_the_cart_stale(self, shop, diner, ours):
        add(diner, shop, "soda", quantity=2)
        with tenant_context(ours):
            Item.objects.filter(pk=shop["soda"]).update(price=350)
            menus.publish(actor=owner_actor(shop))
        html = diner.get(url("cart")).content.decode()
        assert "Soda now costs 3.50 EUR (was 3.00)." in html
        assert "7.00 EUR" in html
        assert cookie_cart(diner, ours).lines[0].seen_unit_price == 350

    def test_a_stale_cart_at_checkout_creates_nothing(self, shop, diner, ours):
        add(diner, shop, "soda")
        add(diner, shop, "fries")
        data = checkout_data(diner)
        with tenant_context(ours):
            fries = Item.objects.get(pk=shop["fries"])
            menus.set_sold_out(actor=owner_actor(shop), obj=fries, sold_out=True)
        response = diner.post(url("checkout"), data)
        html = response.content.decode()
        assert response.status_code == 409
        assert "Fries is sold out." in html
        assert 'value="300"' in html, "the form carries the refreshed total"
        assert orders(ours) == []
        # The refreshed form goes through.
        response = diner.post(url("checkout"), checkout_data(diner))
        assert response.status_code == 303
        assert [order.total for order in orders(ours)] == [300]


# --- Promotion codes -------------------------------------------------------------------------


@pytest.fixture
def promotion(ours):
    with tenant_context(ours):
        return Promotion.objects.create(code="SAVE10", kind=Promotion.Kind.PERCENT, value=10)


class TestPromotionCodes:
    def test_an_applied_code_shows_the_discount_and_carries_to_the_order(
        self, shop, diner, ours, promotion
    ):
        add(diner, shop)
        response = diner.post(url("cart"), {"action": "apply_code", "promotion_code": "save10"})
        assert response.status_code == 303
        html = diner.get(url("cart")).content.decode()
        assert "Code SAVE10 applied: 1.20 EUR off." in html
        assert "Discount (SAVE10)" in html and "−1.20 EUR" in html  # noqa: RUF001
        assert "10.80 EUR" in html
        data = checkout_data(diner)
        assert data["expected_total"] == "1080"
        assert diner.post(url("checkout"), data).status_code == 303
        (order,) = orders(ours)
        assert (order.discount, order.total, order.promotion_code) == (120, 1080, "SAVE10")

    def test_an_unknown_code_is_refused_at_the_field(self, shop, diner, ours, promotion):
        add(diner, shop)
        response = diner.post(url("cart"), {"action": "apply_code", "promotion_code": "NOPE"})
        html = response.content.decode()
        assert response.status_code == 400
        assert 'id="promotion_code-error"' in html and "That promotion code is not valid." in html
        assert cookie_cart(diner, ours).promotion_code == ""

    @pytest.mark.parametrize("code", ["BAD\x00CODE", "X" * 33])
    def test_a_code_that_cannot_exist_is_refused(self, shop, diner, code):
        add(diner, shop)
        response = diner.post(url("cart"), {"action": "apply_code", "promotion_code": code})
        assert response.status_code == 400
        response = diner.post(
            url("checkout"), checkout_data(diner, promotion_code=code, action="update")
        )
        assert response.status_code == 400
        assert 'id="promotion_code-error"' in response.content.decode()

    def test_a_code_of_another_restaurant_is_unknown_here(self, shop, diner, restaurants):
        with tenant_context(restaurants[1]):
            Promotion.objects.create(code="THEIRS", kind=Promotion.Kind.FIXED, value=500)
        add(diner, shop)
        response = diner.post(url("cart"), {"action": "apply_code", "promotion_code": "theirs"})
        assert response.status_code == 400

    def test_a_code_that_stops_applying_is_dropped_with_a_word(self, shop, diner, ours, promotion):
        add(diner, shop)
        diner.post(url("cart"), {"action": "apply_code", "promotion_code": "SAVE10"})
        with tenant_context(ours):
            Promotion.objects.filter(pk=promotion.pk).update(active=False)
        html = diner.get(url("cart")).content.decode()
        assert "The code SAVE10 no longer applies" in html
        assert cookie_cart(diner, ours).promotion_code == ""

    @override_settings(PROMOTION_REDEEM_RATE="2/m")
    def test_applying_codes_is_rate_limited_per_ip(self, shop, diner, frozen_ratelimit_clock):
        add(diner, shop)
        for _ in range(2):
            response = diner.post(url("cart"), {"action": "apply_code", "promotion_code": "X1"})
            assert response.status_code == 400
        response = diner.post(url("cart"), {"action": "apply_code", "promotion_code": "X1"})
        assert response.status_code == 429
        assert int(response["Retry-After"]) > 0
        assert response["Content-Type"].startswith("text/html")
        assert "Too many requests" in response.content.decode()
        other = Client(HTTP_HOST=HOST, REMOTE_ADDR="10.0.0.9")
        add(other, shop)
        response = other.post(url("cart"), {"action": "apply_code", "promotion_code": "X1"})
        assert response.status_code == 400, "another client has its own count"

    @override_settings(PROMOTION_REDEEM_RATE="1/m")
    def test_a_code_at_checkout_counts_against_the_same_limit(
        self, shop, diner, frozen_ratelimit_clock
    ):
        add(diner, shop)
        data = checkout_data(diner, promotion_code="X1", action="update")
        assert diner.post(url("checkout"), data).status_code == 400
        assert diner.post(url("checkout"), data).status_code == 429


# --- Checkout ------------------------------------------------------------------------------


class TestCheckoutForm:
    def test_the_form_offers_what_the_restaurant_does(self, shop, diner, ours):
        Restaurant.objects.filter(pk=ours.pk).update(
            delivery_enabled=True, delivery_fee=390, delivery_minimum=2000
        )
        add(diner, shop)
        html = diner.get(url("checkout")).content.decode()
        assert 'id="fulfilment-pickup"' in html and 'id="fulfilment-delivery"' in html
        assert "fee 3.90 EUR, minimum order 20.00 EUR" in html
        for field in ("address_line1", "address_line2", "address_postal_code", "address_city"):
            assert f'<label for="{field}">' in html
        assert '<label for="delivery_notes">' in html
        assert 'value="asap"' in html and "As soon as possible (about 15:20)" in html
        assert '<optgroup label="Today"><option value="2026-06-01T15:30+03:00">15:30' in html
        assert '<optgroup label="Tomorrow">' in html
        assert 'id="payment-in_person" value="in_person" checked' in html
        assert "Pay at pickup" in html
        assert 'name="tip" id="tip-15" value="15" data-amount="180"' in html
        assert 'name="checkout_token"' in html and 'name="expected_total"' in html
        assert 'id="place-order"' in html

    def test_delivery_is_not_offered_when_off(self, shop, diner):
        add(diner, shop)
        html = diner.get(url("checkout")).content.decode()
        assert 'id="fulfilment-delivery"' not in html and "address_line1" not in html

    def test_taxes_say_included(self, shop, diner, ours):
        Restaurant.objects.filter(pk=ours.pk).update(tax_rate="14")
        add(diner, shop)
        html = diner.get(url("checkout")).content.decode()
        assert "Tax (incl. 14 %)" in html and "1.47 EUR" in html  # 1200 * 14 / 114

    def test_consent_is_unticked_by_default(self, shop, diner):
        add(diner, shop)
        html = diner.get(url("checkout")).content.decode()
        box = re.search(r'<input type="checkbox" name="marketing_consent"[^>]*>', html)
        assert box and "checked" not in box.group(0)
        assert '<label for="marketing_consent">Email me news and offers from Ours.' in html

    def test_asap_is_not_offered_when_closed(self, shop, diner, clock):
        add(diner, shop)
        clock.return_value = NIGHT
        html = diner.get(url("checkout")).content.decode()
        assert 'value="asap"' not in html
        assert '<optgroup label="Tomorrow"><option value="2026-06-02T08:30+03:00">' in html
        response = diner.post(url("checkout"), checkout_data(diner, scheduled_for="asap"))
        assert response.status_code == 400
        assert 'id="scheduled_for-error"' in response.content.decode()

    def test_a_full_slot_is_not_offered(self, shop, diner, ours):
        Restaurant.objects.filter(pk=ours.pk).update(orders_per_slot=1)
        ours.refresh_from_db()
        place_directly(ours, shop, "earlier", scheduled_for="2026-06-01T16:00:00+03:00")
        add(diner, shop)
        html = diner.get(url("checkout")).content.decode()
        assert 'value="2026-06-01T16:00+03:00"' not in html
        assert 'value="2026-06-01T15:45+03:00"' in html
        assert 'value="2026-06-01T16:15+03:00"' in html

    def test_a_slot_that_fills_meanwhile_is_refused_at_the_field(self, shop, diner, ours):
        Restaurant.objects.filter(pk=ours.pk).update(orders_per_slot=1)
        add(diner, shop)
        data = checkout_data(diner, scheduled_for="2026-06-01T16:00+03:00")
        ours.refresh_from_db()
        place_directly(ours, shop, "meanwhile", scheduled_for="2026-06-01T16:00:00+03:00")
        response = diner.post(url("checkout"), data)
        html = response.content.decode()
        assert response.status_code == 409
        assert 'id="scheduled_for-error"' in html and "fully booked" in html
        assert len(orders(ours)) == 1


class TestPlacingAnOrder:
    def test_an_order_is_placed_and_the_cart_emptied(self, shop, diner, ours):
        add(diner, shop, size=shop["large"])
        add(diner, shop, "soda", quantity=2)
        response = diner.post(url("checkout"), checkout_data(diner, phone="+358 40 123 4567"))
        (order,) = orders(ours)
        assert response.status_code == 303
        assert response["Location"] == url("order", order.public_id)
        assert order.total == 1500 + 600 and order.contact_name == "Ada Lovelace"
        assert [(line.name, line.quantity) for line in order.lines.all()] == [
            ("Burger", 1),
            ("Soda", 2),
        ]
        assert response.cookies[carts.COOKIE_NAME].value == "", "the cart is gone"

    def test_a_double_submit_places_one_order(self, shop, diner, ours):
        add(diner, shop)
        data = checkout_data(diner)
        cart_cookie = diner.cookies[carts.COOKIE_NAME].value
        first = diner.post(url("checkout"), data)
        # A double click: the second request left with the same cookie as the first.
        diner.cookies[carts.COOKIE_NAME] = cart_cookie
        second = diner.post(url("checkout"), data)
        # A resubmit after the first reply cleared the cart.
        third = diner.post(url("checkout"), data)
        (order,) = orders(ours)
        where = url("order", order.public_id)
        assert [r.status_code for r in (first, second, third)] == [303, 303, 303]
        assert first["Location"] == second["Location"] == third["Location"] == where

    def test_a_changed_resubmit_of_an_ordered_cart_shows_that_order(self, shop, diner, ours):
        add(diner, shop)
        data = checkout_data(diner)
        cart_cookie = diner.cookies[carts.COOKIE_NAME].value
        diner.post(url("checkout"), data)
        diner.cookies[carts.COOKIE_NAME] = cart_cookie  # the reply was lost
        response = diner.post(url("checkout"), {**data, "name": "Ada L."})
        (order,) = orders(ours)
        assert response.status_code == 303 and response["Location"] == url("order", order.public_id)

    def test_a_form_from_before_the_cart_changed_is_refused(self, shop, diner, ours):
        add(diner, shop)
        data = checkout_data(diner)
        add(diner, shop, "soda")
        response = diner.post(url("checkout"), data)
        assert response.status_code == 409
        assert "Your cart changed since this page was opened." in response.content.decode()
        assert orders(ours) == []

    def test_a_ticked_box_asks_for_news_and_gives_no_consent(self, shop, diner, ours):
        add(diner, shop)
        diner.post(url("checkout"), checkout_data(diner, email="no@example.com"))
        add(diner, shop)
        diner.post(
            url("checkout"),
            checkout_data(diner, email="yes@example.com", marketing_consent="on"),
        )
        with tenant_context(ours):
            rows = {
                email: rest
                for email, *rest in Customer.objects.values_list(
                    "email", "marketing_consent", "consent_requested_at"
                )
            }
        # Consent waits for the link in the order email (double opt-in).
        assert rows == {"no@example.com": [False, None], "yes@example.com": [False, NOW]}

    def test_delivery_needs_an_address(self, shop, diner, ours):
        Restaurant.objects.filter(pk=ours.pk).update(delivery_enabled=True, delivery_fee=390)
        add(diner, shop)
        data = checkout_data(diner, fulfilment="delivery", phone="+358 40 123 4567")
        response = diner.post(url("checkout"), data)
        html = response.content.decode()
        assert response.status_code == 400
        assert 'id="address_line1-error"' in html and "This is required." in html
        assert 'id="fulfilment-delivery" value="delivery" checked' in html
        assert orders(ours) == []
        data.update(
            address_line1="Mannerheimintie 5",
            address_postal_code="00100",
            address_city="Helsinki",
            expected_total=str(1200 + 390),
        )
        response = diner.post(url("checkout"), data)
        assert response.status_code == 303
        (order,) = orders(ours)
        assert order.delivery_address["line1"] == "Mannerheimintie 5"
        assert order.delivery_fee == 390 and order.total == 1590
        page = diner.get(response["Location"]).content.decode()
        assert "Mannerheimintie" not in page, "the status page's link may travel"

    def test_delivery_minimum_is_stated_at_the_choice(self, shop, diner, ours):
        Restaurant.objects.filter(pk=ours.pk).update(delivery_enabled=True, delivery_minimum=5000)
        add(diner, shop)
        data = checkout_data(
            diner, fulfilment="delivery", phone="+358 40 123 4567", address_line1="Street 1",
            address_postal_code="00100", address_city="Helsinki",
        )  # fmt: skip
        response = diner.post(url("checkout"), data)
        assert response.status_code == 400
        assert "Delivery needs an order of at least 50.00 EUR." in response.content.decode()

    def test_a_tip_is_priced_on_the_subtotal(self, shop, diner, ours):
        add(diner, shop)
        response = diner.post(url("checkout"), checkout_data(diner, tip="15"))
        assert response.status_code == 409, "the diner has not seen the total with the tip"
        assert "The total is now 13.80 EUR (you saw 12.00)" in response.content.decode()
        response = diner.post(
            url("checkout"), checkout_data(diner, tip="15", expected_total="1380")
        )
        assert response.status_code == 303
        (order,) = orders(ours)
        assert (order.tip, order.total) == (180, 1380)

    def test_update_total_shows_the_choices_priced(self, shop, diner, ours):
        add(diner, shop)
        data = checkout_data(diner, tip="custom", tip_custom="2.50", action="update")
        response = diner.post(url("checkout"), data)
        html = response.content.decode()
        assert response.status_code == 200
        assert 'id="order-total">14.50 EUR' in html and 'value="1450"' in html
        assert orders(ours) == []
        response = diner.post(url("checkout"), {**data, "tip_custom": "lots"})
        assert response.status_code == 400
        assert "Enter the tip as an amount" in response.content.decode()

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"email": "not-an-email"}, "email"),
            ({"name": ""}, "name"),
            ({"phone": "call me"}, "phone"),
            ({"scheduled_for": "2026-13-45T99:00"}, "scheduled_for"),
            ({"scheduled_for": "2026-06-01T15:37+03:00"}, "scheduled_for"),
            ({"tip": "custom", "tip_custom": "-1"}, "tip"),
            ({"payment_method": "bitcoin"}, "payment_method"),
            ({"fulfilment": "drone"}, "fulfilment"),
            ({"marketing_consent": "maybe"}, "marketing_consent"),
        ],
    )
    def test_bad_input_is_shown_at_its_field_and_creates_nothing(
        self, shop, diner, ours, fields, field
    ):
        add(diner, shop)
        response = diner.post(url("checkout"), checkout_data(diner, **fields))
        assert response.status_code == 400
        html = response.content.decode()
        assert f'href="#{field}"' in html, "the summary links to the field"
        assert orders(ours) == []

    def test_garbage_totals_and_tokens_are_4xx(self, shop, diner, ours):
        add(diner, shop)
        assert (
            diner.post(url("checkout"), checkout_data(diner, expected_total="x")).status_code == 400
        )
        assert (
            diner.post(url("checkout"), checkout_data(diner, checkout_token="")).status_code == 409
        )
        assert orders(ours) == []

    def test_an_empty_cart_goes_back_to_the_cart(self, shop, diner):
        assert diner.get(url("checkout"))["Location"] == url("cart")
        response = diner.post(url("checkout"), {"checkout_token": "unknown"})
        assert response.status_code == 303 and response["Location"] == url("cart")

    def test_an_api_clients_key_never_leads_to_its_order(self, shop, diner, ours):
        """API clients choose their keys (guessable, e.g. "order-1"); the page only looks up
        keys it minted itself."""
        placed = place_directly(ours, shop, "order-1")
        response = diner.post(url("checkout"), {"checkout_token": "order-1"})
        assert response.status_code == 303 and response["Location"] == url("cart")
        assert str(placed.public_id) not in response["Location"]

    @override_settings(CHECKOUT_RATE="2/m")
    def test_checkout_is_rate_limited_per_ip(self, shop, diner, ours, frozen_ratelimit_clock):
        add(diner, shop)
        data = checkout_data(diner, email="bad")
        assert [diner.post(url("checkout"), data).status_code for _ in range(3)] == [400, 400, 429]
        assert orders(ours) == []


# --- The order's page ------------------------------------------------------------------------


class TestOrderPage:
    def test_confirmation_with_status_steps_and_totals(self, shop, diner, ours):
        add(diner, shop, extras=[shop["cheese"]], extra_fields={"note": "Well done"})
        response = diner.post(
            url("checkout"), checkout_data(diner, scheduled_for="2026-06-01T16:30+03:00")
        )
        page = diner.get(response["Location"])
        html = page.content.decode()
        (order,) = orders(ours)
        assert page.status_code == 200 and page["Cache-Control"] == "private, no-store"
        assert f"<h1>Order {order.number}</h1>" in html
        assert '<strong id="order-status">Placed</strong>' in html
        steps = re.findall(r'data-step="(\w+)" class="(\w+)"', html)
        assert steps == [
            ("placed", "current"),
            ("accepted", "todo"),
            ("preparing", "todo"),
            ("ready", "todo"),
            ("completed", "todo"),
        ]
        assert 'aria-live="polite"' in html
        assert "Scheduled for today at" in html and ">16:30<" in html  # Helsinki time
        assert "Cheese" in html and "Note: Well done" in html and "13.50 EUR" in html
        assert f'data-status-url="/api/v1/storefront/orders/{order.public_id}"' in html
        assert "/static/storefront/storefront.js" in html and "<noscript>" in html

    def test_a_finished_order_does_not_poll(self, shop, diner, ours):
        order = place_directly(ours, shop, "done")
        with tenant_context(ours):
            Order.objects.filter(pk=order.pk).update(status="cancelled")
        html = diner.get(url("order", order.public_id)).content.decode()
        assert '<strong id="order-status">Cancelled</strong>' in html
        assert "storefront.js" not in html

    def test_another_restaurants_order_is_404(self, shop, diner, restaurants):
        theirs = restaurants[1]
        open_all_week(theirs)
        their_ids = make_shop(theirs)
        theirs_order = place_directly(theirs, their_ids, "theirs")
        assert diner.get(url("order", theirs_order.public_id)).status_code == 404
        assert diner.get(url("order", "6f1c1a9e-0000-4000-8000-000000000000")).status_code == 404
        assert diner.get("/orders/not-a-uuid").status_code == 404

    def test_a_few_queries(self, shop, diner, ours, django_assert_max_num_queries):
        order = place_directly(ours, shop, "q")
        diner.get(url("order", order.public_id))  # the host lookup is cached from here on
        with django_assert_max_num_queries(7):
            assert diner.get(url("order", order.public_id)).status_code == 200


# --- Across the pages ------------------------------------------------------------------------


def all_pages(client: Client, shop: dict, ours: Restaurant) -> list[str]:
    order = place_directly(ours, shop, "pages")
    add(client, shop)
    return [
        "/",
        url("item", shop["burger"]),
        url("cart"),
        url("checkout"),
        url("order", order.public_id),
    ]


def test_no_inline_script_or_style_and_a_strict_csp(shop, diner, ours):
    for path in all_pages(diner, shop, ours):
        response = diner.get(path)
        assert response.status_code == 200, path
        policy = response["Content-Security-Policy"]
        script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
        html = response.content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert " style=" not in html and "<style" not in html, path
        assert '<html lang="en">' in html and 'href="#main"' in html and 'id="main"' in html


def test_every_form_carries_a_csrf_token_and_every_input_a_label(shop, diner, ours):
    for path in all_pages(diner, shop, ours):
        html = diner.get(path).content.decode()
        assert html.count("<form") == html.count('name="csrfmiddlewaretoken"'), path
        visible = re.findall(r'<(?:input|select|textarea)(?![^>]*type="hidden")[^>]*>', html)
        for tag in visible:
            field_id = re.search(r'\bid="([^"]+)"', tag)
            assert field_id, f"{path}: {tag} has no id"
            assert f'for="{field_id.group(1)}"' in html, f"{path}: {tag} has no label"


def test_forms_refuse_a_missing_csrf_token(shop):
    strict = Client(HTTP_HOST=HOST, enforce_csrf_checks=True)
    assert strict.post(url("item", shop["fries"]), {"quantity": "1"}).status_code == 403


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": f"http://{HOST}"}, 303),
        ({"Referer": f"http://{HOST}/"}, 303),
        ({}, 403),
        ({"Origin": "http://theirs.localhost"}, 403),
        ({"Referer": "http://theirs.localhost/"}, 403),
        ({"Origin": "http://testserver"}, 403),
    ],
)
def test_forms_post_only_from_the_storefronts_own_origin(shop, headers, status):
    """A diner's form posts to its own host and passes; another storefront's cannot."""
    strict = Client(HTTP_HOST=HOST, enforce_csrf_checks=True)
    html = strict.get("/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert token
    form = {"quantity": "1", "csrfmiddlewaretoken": token.group(1)}
    response = strict.post(url("item", shop["fries"]), form, headers=headers)
    assert response.status_code == status


def test_pages_stay_within_a_small_query_budget(shop, diner, ours, django_assert_max_num_queries):
    add(diner, shop)
    diner.get("/")
    budgets = [(url("item", shop["burger"]), 6), (url("cart"), 6), (url("checkout"), 8)]
    for path, budget in budgets:
        with django_assert_max_num_queries(budget):
            assert diner.get(path).status_code == 200
