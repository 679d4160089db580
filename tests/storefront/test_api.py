"""The storefront API end to end, as a diner's browser calls it on the restaurant's host."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from menus import services as menus
from menus.models import Item
from orders.models import Order
from orders.services import order_transition
from promotions.models import Promotion
from staff.auth import Actor
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import make_shop, open_all_week
from tests.support.openapi import assert_matches_schema

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday; open 08:00-22:00, 20 min lead
ERROR_KEYS = {"type", "code", "detail", "attr"}
ADDRESS = {"line1": "Secret street 7", "postal_code": "00990", "city": "Hiddenville"}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """Every "now" the views and services read (one place: django.utils.timezone.now)."""
    frozen = Clock()
    monkeypatch.setattr(timezone, "now", frozen)
    return frozen


@pytest.fixture
def shop(restaurants, clock):
    ours, theirs = restaurants
    open_all_week(ours)
    open_all_week(theirs)
    return make_shop(ours)


@pytest.fixture
def theirs_shop(shop, restaurants):
    return make_shop(restaurants[1])


def client(host: str = "ours.localhost", **extra) -> Client:
    return Client(HTTP_HOST=host, raise_request_exception=False, **extra)


def url(name: str, **kwargs) -> str:
    return reverse(name, urlconf="storefront.urls", kwargs=kwargs or None)


def post(name: str, data, *, host: str = "ours.localhost", key: str | None = None, **extra):
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    payload = data if isinstance(data, str) else json.dumps(data)
    return client(host).post(url(name), data=payload, content_type="application/json", **extra)


def checkout_body(ids: dict, **fields) -> dict:
    data = {
        "lines": [{"item_id": ids["burger"], "quantity": 1, "modifier_ids": [ids["regular"]]}],
        "name": "Ada Lovelace",
        "email": "ada.secret@example.com",
        "phone": "+358 40 7654321",
    }
    data.update(fields)
    return data


def order_url(public_id) -> str:
    return url("api-storefront-order", public_id=public_id)


def assert_error(response, status: int, code: str, attr: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) >= ERROR_KEYS, body
    assert body["code"] == code, body
    assert body["attr"] == attr, body
    assert body["detail"]
    return body


def orders_in(restaurant) -> int:
    with tenant_context(restaurant):
        return Order.objects.count()


class TestOptions:
    def test_what_the_checkout_form_can_offer(self, shop, restaurants):
        ours = restaurants[0]
        ours.delivery_enabled, ours.delivery_minimum, ours.delivery_fee = True, 2000, 390
        ours.save()
        response = client().get(url("api-storefront-options"))
        assert response.status_code == 200
        body = response.json()
        assert body["open_now"] is True
        assert body["asap"] == "2026-06-01T12:20:00+00:00"
        assert body["times"][:2] == ["2026-06-01T12:30:00+00:00", "2026-06-01T12:45:00+00:00"]
        assert body["fulfilments"] == ["pickup", "delivery"]
        assert body["payment_methods"] == [{"method": "in_person", "label": "Pay at pickup"}]
        assert (body["delivery_minimum"], body["delivery_fee"]) == (2000, 390)
        assert (body["currency"], body["prep_time_minutes"]) == ("EUR", 20)
        assert body["next_opening"] == "2026-06-02T08:00:00+00:00"

    def test_closed_now(self, shop, clock):
        clock.now = datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
        body = client().get(url("api-storefront-options")).json()
        assert (body["open_now"], body["asap"]) == (False, None)
        assert body["next_opening"] == "2026-06-02T08:00:00+00:00"
        assert body["times"][0] == "2026-06-02T08:30:00+00:00"

    def test_times_are_in_the_restaurants_zone(self, shop, restaurants):
        ours = restaurants[0]
        ours.timezone = "Europe/Helsinki"
        ours.save()
        body = client().get(url("api-storefront-options")).json()
        assert body["asap"] == "2026-06-01T15:20:00+03:00"

    def test_a_full_slot_is_not_offered(self, shop, restaurants):
        ours = restaurants[0]
        ours.orders_per_slot = 1
        ours.save()
        slot = "2026-06-01T13:00:00+00:00"
        assert slot in client().get(url("api-storefront-options")).json()["times"]
        assert (
            post("api-storefront-checkout", checkout_body(shop, scheduled_for=slot)).status_code
            == 201
        )
        assert slot not in client().get(url("api-storefront-options")).json()["times"]


class TestQuote:
    def test_the_cart_priced_on_the_server(self, shop):
        response = post("api-storefront-quote", {
            "lines": [{"item_id": shop["burger"], "quantity": 2,
                       "modifier_ids": [shop["large"], shop["bacon"]], "unit_price": 1}],
            "tip": 150,
        })  # fmt: skip
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["lines"][0]["unit_price"] == 1700
        assert (body["subtotal"], body["tip"], body["total"]) == (3400, 150, 3550)
        assert [p["code"] for p in body["problems"]] == ["price_changed"]
        assert orders_in(shop["owner"].restaurant) == 0

    def test_problems_are_listed_not_refused(self, shop):
        with tenant_context(shop["owner"].restaurant):
            menus.set_sold_out(actor=Actor(member=shop["owner"]),
                               obj=Item.objects.get(pk=shop["soda"]), sold_out=True)  # fmt: skip
        body = post("api-storefront-quote", {"lines": [
            {"item_id": shop["soda"], "quantity": 1}, {"item_id": shop["fries"], "quantity": 1},
        ]}).json()  # fmt: skip
        assert [p["code"] for p in body["problems"]] == ["sold_out"]
        assert [line["name"] for line in body["lines"]] == ["Fries"]

    def test_a_code_discounts(self, shop, restaurants):
        with tenant_context(restaurants[0]):
            Promotion.objects.create(code="Half", kind=Promotion.Kind.PERCENT, value=50)
        body = post("api-storefront-quote", {
            "lines": [{"item_id": shop["fries"], "quantity": 1}], "promotion_code": "HALF",
        }).json()  # fmt: skip
        assert (body["discount"], body["total"], body["promotion_code"]) == (225, 225, "Half")

    @pytest.mark.parametrize(
        ("data", "code", "attr"),
        [
            ({"lines": [], "promotion_code": "NOPE"}, "promotion_unknown", "promotion_code"),
            ({"lines": [], "promotion_code": 12}, "invalid", "promotion_code"),
            ({"lines": "all"}, "invalid", "lines"),
            ({"lines": [], "tip": -1}, "invalid", "tip"),
            ({"lines": [], "tip": 1.5}, "invalid", "tip"),
            ({"lines": [], "fulfilment": "drone"}, "invalid", "fulfilment"),
            ({"lines": [], "scheduled_for": "2026-02-30T12:00"}, "invalid", "scheduled_for"),
            ({"lines": [], "scheduled_for": "9999-12-31T23:59-01:00"}, "invalid", "scheduled_for"),
            ({"lines": [], "restaurant": 2}, "read_only", "restaurant"),
        ],
    )
    def test_bad_input_is_a_400(self, shop, data, code, attr):
        body = assert_error(post("api-storefront-quote", data), 400, code, attr)
        assert body["type"] == "validation_error"

    def test_a_menu_never_published_is_a_409(self, shop, restaurants):
        response = post("api-storefront-quote", {"lines": []}, host="theirs.localhost")
        body = assert_error(response, 409, "stale_cart")
        assert body["cart"]["lines"] == []


class TestCheckout:
    def test_placed_then_replayed_with_the_same_key(self, shop, restaurants):
        ours = restaurants[0]
        first = post("api-storefront-checkout", checkout_body(shop), key="attempt-1")
        assert first.status_code == 201, first.content
        order = first.json()
        assert order["number"] == 1 and order["status"] == "placed"
        assert order["totals"] == {"subtotal": 1200, "discount": 0, "tax": 0,
                                   "delivery_fee": 0, "tip": 0, "total": 1200,
                                   "currency": "EUR"}  # fmt: skip
        assert order["promised_at"] == "2026-06-01T12:20:00+00:00"
        assert first["Cache-Control"] == "no-store"
        again = post("api-storefront-checkout", checkout_body(shop), key="attempt-1")
        assert again.status_code == 200
        assert again.json() == order
        assert orders_in(ours) == 1

    def test_the_same_key_with_another_body_is_a_409(self, shop, restaurants):
        post("api-storefront-checkout", checkout_body(shop), key="attempt-1")
        response = post("api-storefront-checkout", checkout_body(shop, tip=100), key="attempt-1")
        assert_error(response, 409, "idempotency_key_reused", "Idempotency-Key")
        assert orders_in(restaurants[0]) == 1

    def test_without_a_key_each_post_is_an_order(self, shop, restaurants):
        assert post("api-storefront-checkout", checkout_body(shop)).status_code == 201
        assert post("api-storefront-checkout", checkout_body(shop)).status_code == 201
        assert orders_in(restaurants[0]) == 2

    @pytest.mark.parametrize("key", ["has space", "k" * 101, "tab\tkey", "ключ"])
    def test_a_malformed_key_is_a_400(self, shop, restaurants, key):
        response = post("api-storefront-checkout", checkout_body(shop), key=key)
        assert_error(response, 400, "invalid", "Idempotency-Key")
        assert orders_in(restaurants[0]) == 0

    def test_the_order_body_holds_no_contact_data(self, shop, restaurants):
        ours = restaurants[0]
        ours.delivery_enabled = True
        ours.save()
        data = checkout_body(shop, fulfilment="delivery", address=ADDRESS,
                             delivery_notes="Door code 4711")  # fmt: skip
        created = post("api-storefront-checkout", data)
        assert created.status_code == 201, created.content
        fetched = client().get(order_url(created.json()["public_id"]))
        for response in (created, fetched):
            text = response.content.decode()
            for secret in ("ada.secret", "7654321", "Secret street", "00990", "Hiddenville",
                           "4711", "Ada Lovelace"):  # fmt: skip
                assert secret not in text
        assert set(fetched.json()) == {
            "public_id", "number", "status", "status_label", "fulfilment", "promised_at",
            "placed_at", "accepted_at", "preparing_at", "ready_at", "completed_at",
            "cancelled_at", "lines", "totals", "updated_at",
        }  # fmt: skip

    @pytest.mark.parametrize(
        ("data", "status", "code", "attr"),
        [
            ("[1, 2]", 400, "invalid", None),
            ('"text"', 400, "invalid", None),
            ("{not json", 400, "parse_error", None),
            ('{"lines": NaN}', 400, "parse_error", None),
            ('{"restaurant": 2}', 400, "read_only", "restaurant"),
            ('{"total": 1}', 400, "read_only", "total"),
        ],
    )
    def test_bodies_that_are_not_a_checkout(self, shop, restaurants, data, status, code, attr):
        assert_error(post("api-storefront-checkout", data), status, code, attr)
        assert orders_in(restaurants[0]) == 0

    def test_field_errors_name_the_field(self, shop, restaurants):
        changes: list[tuple[dict, str]] = [
            ({"email": "nope"}, "email"),
            ({"lines": [{"item_id": shop["fries"], "quantity": -1}]}, "lines.0.quantity"),
            ({"lines": [{"item_id": 2**80, "quantity": 1}]}, "lines.0.item_id"),
            ({"name": "A\u0000da"}, "name"),
            # Lone surrogates: valid JSON, but no database can store them.
            ({"name": "A\ud800"}, "name"),
            ({"promotion_code": "X\ud800"}, "promotion_code"),
            (
                {"lines": [{"item_id": shop["fries"], "quantity": 1, "note": "x\udfff"}]},
                "lines.0.note",
            ),
            ({"scheduled_for": "soon"}, "scheduled_for"),
            ({"tip": 5000}, "tip"),
        ]
        for change, attr in changes:
            response = post("api-storefront-checkout", {**checkout_body(shop), **change})
            assert_error(response, 400, "invalid", attr)
        assert orders_in(restaurants[0]) == 0
        with tenant_context(restaurants[0]):
            assert Customer.objects.count() == 0

    def test_a_quote_with_unstorable_text_is_a_400(self, shop):
        lines = [{"item_id": shop["fries"], "quantity": 1, "note": "x\ud800"}]
        assert_error(post("api-storefront-quote", {"lines": lines}), 400, "invalid", "lines.0.note")
        response = post("api-storefront-quote", {"lines": [], "promotion_code": "A\ud800"})
        assert_error(response, 400, "invalid", "promotion_code")

    def test_form_bodies_are_not_accepted(self, shop):
        response = client().post(url("api-storefront-checkout"), data={"name": "Ada"})
        assert_error(response, 415, "unsupported_media_type")

    def test_closed_is_a_400(self, shop, clock):
        clock.now = datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
        assert_error(post("api-storefront-checkout", checkout_body(shop)), 400, "closed",
                     "scheduled_for")  # fmt: skip

    def test_a_stale_cart_is_a_409_with_a_refreshed_cart(self, shop, restaurants):
        with tenant_context(restaurants[0]):
            menus.set_sold_out(actor=Actor(member=shop["owner"]),
                               obj=Item.objects.get(pk=shop["fries"]), sold_out=True)  # fmt: skip
        data = checkout_body(shop, lines=[
            {"item_id": shop["fries"], "quantity": 1},
            {"item_id": shop["soda"], "quantity": 2, "unit_price": 300},
        ])  # fmt: skip
        body = assert_error(post("api-storefront-checkout", data), 409, "stale_cart")
        assert body["type"] == "conflict"
        assert [p["code"] for p in body["problems"]] == ["sold_out"]
        assert body["cart"]["lines"] == [{
            "item_id": shop["soda"], "name": "Soda", "modifiers": [], "modifier_ids": [],
            "unit_price": 300, "quantity": 2, "line_total": 600, "note": "",
        }]  # fmt: skip
        assert body["cart"]["total"] == 600
        assert orders_in(restaurants[0]) == 0

    def test_a_full_slot_is_a_409_naming_other_times(self, shop, restaurants):
        ours = restaurants[0]
        ours.orders_per_slot = 1
        ours.save()
        data = checkout_body(shop, scheduled_for="2026-06-01T13:00:00Z")
        assert post("api-storefront-checkout", data).status_code == 201
        body = assert_error(
            post("api-storefront-checkout", {**data, "email": "bo@example.com"}),
            409, "slot_full", "scheduled_for",
        )  # fmt: skip
        assert body["available_times"][0] == "2026-06-01T12:30:00+00:00"
        assert "2026-06-01T13:00:00+00:00" not in body["available_times"]

    def test_get_is_not_allowed(self, shop):
        assert_error(client().get(url("api-storefront-checkout")), 405, "method_not_allowed")


class TestHosts:
    def test_an_unknown_host_is_a_404(self, shop):
        assert_error(client("nosuch.localhost").get(url("api-storefront-options")), 404,
                     "not_found")  # fmt: skip
        response = post("api-storefront-quote", {"lines": []}, host="nosuch.localhost")
        assert_error(response, 404, "not_found")
        missing_order = client("nosuch.localhost").get(order_url(uuid.uuid4()))
        assert_error(missing_order, 404, "not_found")
        response = post("api-storefront-checkout", checkout_body(shop), host="nosuch.localhost")
        assert_error(response, 404, "not_found")

    def test_a_suspended_restaurant_is_a_404(self, shop, restaurants):
        ours = restaurants[0]
        ours.status = ours.Status.SUSPENDED
        ours.save()
        assert_error(client().get(url("api-storefront-options")), 404, "not_found")

    def test_a_suspended_restaurant_takes_no_order(self, shop, restaurants):
        ours = restaurants[0]
        assert client().get(url("api-storefront-options")).status_code == 200  # host memoised
        Restaurant.objects.filter(pk=ours.pk).update(status=Restaurant.Status.SUSPENDED)
        response = post("api-storefront-checkout", checkout_body(shop), key="after-suspension")
        assert_error(response, 404, "not_found")
        assert orders_in(ours) == 0

    def test_a_restaurant_without_a_live_menu_takes_no_order(self, shop, restaurants):
        response = post("api-storefront-checkout", checkout_body(shop), host="theirs.localhost",
                        key="no-menu")  # fmt: skip
        body = assert_error(response, 409, "stale_cart")
        assert [p["code"] for p in body["problems"]] == ["menu_unavailable"]
        assert orders_in(restaurants[1]) == 0

    def test_the_app_host_has_no_storefront_routes(self, shop):
        for host in ("localhost", "testserver"):
            response = Client(HTTP_HOST=host).get(url("api-storefront-options"))
            assert response.status_code == 404
            response = Client(HTTP_HOST=host).post(
                url("api-storefront-checkout"), data=json.dumps(checkout_body(shop)),
                content_type="application/json",
            )  # fmt: skip
            assert response.status_code == 404
        assert orders_in(shop["owner"].restaurant) == 0

    def test_each_host_places_orders_in_its_own_restaurant(self, shop, theirs_shop, restaurants):
        ours, theirs = restaurants
        assert post("api-storefront-checkout", checkout_body(theirs_shop),
                    host="theirs.localhost").status_code == 201  # fmt: skip
        # Their item ids mean nothing on our menu.
        response = post("api-storefront-checkout", checkout_body(theirs_shop))
        assert_error(response, 409, "stale_cart")
        assert (orders_in(ours), orders_in(theirs)) == (0, 1)


class TestOrderStatus:
    def place(self, shop, host="ours.localhost", **fields):
        response = post("api-storefront-checkout", checkout_body(shop, **fields), host=host)
        assert response.status_code == 201, response.content
        return response.json()

    def test_the_public_status_of_an_order(self, shop):
        placed = self.place(shop, lines=[
            {"item_id": shop["burger"], "quantity": 2,
             "modifier_ids": [shop["large"], shop["egg"]]}], tip=50)  # fmt: skip
        response = client().get(order_url(placed["public_id"]))
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        assert response["ETag"].startswith('W/"')
        body = response.json()
        assert body == placed
        assert (body["status"], body["status_label"], body["fulfilment"]) == (
            "placed", "Placed", "pickup",
        )  # fmt: skip
        assert body["placed_at"] == "2026-06-01T12:00:00+00:00"
        assert body["accepted_at"] is None and body["cancelled_at"] is None
        assert body["lines"] == [{
            "name": "Burger",
            "options": [{"group": "Size", "name": "Large", "price_delta": 300},
                        {"group": "Extras", "name": "Egg", "price_delta": 100}],
            "quantity": 2, "unit_price": 1600, "line_total": 3200,
        }]  # fmt: skip
        assert body["totals"]["total"] == 3250

    def test_304_until_the_kitchen_moves_it(self, shop, roster, restaurants):
        placed = self.place(shop)
        first = client().get(order_url(placed["public_id"]))
        etag = first["ETag"]
        same = client().get(order_url(placed["public_id"]), HTTP_IF_NONE_MATCH=etag)
        assert same.status_code == 304
        assert same.content == b""
        assert same["ETag"] == etag and same["Cache-Control"] == "no-store"
        strong = etag.removeprefix("W/")
        assert client().get(order_url(placed["public_id"]),
                            HTTP_IF_NONE_MATCH=f'"other", {strong}').status_code == 304  # fmt: skip
        with tenant_context(restaurants[0]):
            order = Order.objects.get(public_id=placed["public_id"])
            order_transition(actor=Actor(member=roster[("ours", "kitchen")]),
                             order_id=order.pk, to_status="accepted")  # fmt: skip
        moved = client().get(order_url(placed["public_id"]), HTTP_IF_NONE_MATCH=etag)
        assert moved.status_code == 200
        assert moved["ETag"] != etag
        assert moved.json()["status"] == "accepted"
        assert moved.json()["accepted_at"] == "2026-06-01T12:00:00+00:00"

    def test_another_restaurants_order_is_a_404_like_a_missing_one(self, shop, theirs_shop):
        theirs_order = self.place(theirs_shop, host="theirs.localhost", email="their@example.com")
        assert (
            client("theirs.localhost").get(order_url(theirs_order["public_id"])).status_code == 200
        )
        foreign = client().get(order_url(theirs_order["public_id"]))
        missing = client().get(order_url(uuid.uuid4()))
        assert_error(foreign, 404, "not_found")
        assert foreign.json() == missing.json()
        assert theirs_order["public_id"] not in foreign.content.decode()
        assert "ETag" not in foreign

    def test_a_malformed_id_is_a_404(self, shop):
        response = client().get("/api/v1/storefront/orders/12")
        assert_error(response, 404, "not_found")

    def test_reading_costs_a_fixed_few_queries(self, shop, theirs_shop):
        ours_order = self.place(shop)
        theirs_order = self.place(theirs_shop, host="theirs.localhost")
        etag = client().get(order_url(ours_order["public_id"]))["ETag"]

        def queries(public_id, status, **headers):
            with CaptureQueriesContext(connection) as captured:
                assert client().get(order_url(public_id), **headers).status_code == status
            # Read now: the next request clears the connection's query log.
            return [query["sql"] for query in captured.captured_queries]

        found = queries(ours_order["public_id"], 200)
        unchanged = queries(ours_order["public_id"], 304, HTTP_IF_NONE_MATCH=etag)
        missing = queries(uuid.uuid4(), 404)
        foreign = queries(theirs_order["public_id"], 404)
        assert len(missing) == len(foreign) == len(found) == len(unchanged)
        # The restaurant, the tenant setting and the order with its lines; the tenant
        # context is a savepoint here (tests run in a transaction), which adds three.
        assert len(found) <= 6, found


def test_placing_costs_a_fixed_few_queries(shop):
    post("api-storefront-checkout", checkout_body(shop), key="warm-up")
    with CaptureQueriesContext(connection) as captured:
        response = post("api-storefront-checkout", checkout_body(shop), key="counted")
    assert response.status_code == 201
    statements = [query["sql"] for query in captured.captured_queries]
    # The restaurant with its live menu (one query); then in the order's transaction the
    # tenant setting, the customer, the order, its lines, its first status, the number and
    # the checkout's events (one statement, which with the database queue also queues their
    # delivery). Here the transaction is a savepoint of the test's (SAVEPOINT, RELEASE, and
    # the tenant setting put back): three more.
    assert len(statements) <= 11, statements


class TestRateLimits:
    @override_settings(CHECKOUT_RATE="3/m")
    def test_checkouts_per_ip(self, shop, frozen_ratelimit_clock):
        for n in range(3):
            data = checkout_body(shop, email=f"d{n}@example.com") if n else {"lines": "x"}
            assert post("api-storefront-checkout", data).status_code in (201, 400)
        response = post("api-storefront-checkout", checkout_body(shop, email="late@example.com"))
        assert_error(response, 429, "rate_limited")
        assert int(response["Retry-After"]) >= 1
        assert response.json()["type"] == "rate_limited"
        other_ip = post("api-storefront-checkout", checkout_body(shop, email="x@example.com"),
                        REMOTE_ADDR="10.1.2.3")  # fmt: skip
        assert other_ip.status_code == 201
        # Reads are never limited.
        assert client().get(url("api-storefront-options")).status_code == 200

    @override_settings(PROMOTION_REDEEM_RATE="2/m")
    def test_promotion_codes_per_ip(self, shop, restaurants, frozen_ratelimit_clock):
        with tenant_context(restaurants[0]):
            Promotion.objects.create(code="REAL", kind=Promotion.Kind.FIXED, value=100)
        lines = [{"item_id": shop["fries"], "quantity": 1}]
        assert post("api-storefront-quote", {"lines": lines, "promotion_code": "GUESS1"}
                    ).status_code == 400  # fmt: skip
        assert post("api-storefront-checkout", checkout_body(shop, promotion_code="GUESS2")
                    ).status_code == 400  # fmt: skip
        guessed = post("api-storefront-quote", {"lines": lines, "promotion_code": "REAL"})
        assert_error(guessed, 429, "rate_limited")
        assert int(guessed["Retry-After"]) >= 1
        response = post("api-storefront-checkout", checkout_body(shop, promotion_code="REAL"))
        assert_error(response, 429, "rate_limited")
        assert orders_in(restaurants[0]) == 0
        # Without a code, quotes and checkouts go on.
        assert post("api-storefront-quote", {"lines": lines}).status_code == 200
        assert post("api-storefront-checkout", checkout_body(shop)).status_code == 201


class TestResponsesMatchTheSchema:
    """The storefront API answers as the OpenAPI document declares (its own tag there)."""

    def test_menu_options_quote_checkout_and_order(self, shop):
        menu = client().get(url("api-storefront-menu"))
        assert_matches_schema(menu, "GET", "/api/v1/storefront/menu")
        options = client().get(url("api-storefront-options"))
        assert_matches_schema(options, "GET", "/api/v1/storefront/options")
        quote = post("api-storefront-quote", {
            "lines": [{"item_id": shop["burger"], "quantity": 2,
                       "modifier_ids": [shop["large"], shop["bacon"]], "unit_price": 1}],
        })  # fmt: skip
        assert quote.json()["problems"], "a changed price is listed"
        assert_matches_schema(quote, "POST", "/api/v1/storefront/quote")
        placed = post("api-storefront-checkout", checkout_body(shop), key="schema-1")
        assert_matches_schema(placed, "POST", "/api/v1/storefront/checkout")
        replayed = post("api-storefront-checkout", checkout_body(shop), key="schema-1")
        assert replayed.status_code == 200
        assert_matches_schema(replayed, "POST", "/api/v1/storefront/checkout")
        order = client().get(order_url(placed.json()["public_id"]))
        assert_matches_schema(order, "GET", "/api/v1/storefront/orders/{public_id}")
        missing = client().get(order_url(uuid.uuid4()))
        assert missing.status_code == 404
        assert_matches_schema(missing, "GET", "/api/v1/storefront/orders/{public_id}")
