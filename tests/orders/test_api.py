"""The staff orders API: the list and its filters, cursor pages, one order with its history,
moving and cancelling, and what the Kitchen role may see."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from orders.api import CONTACT_FIELDS
from orders.checkout_request import parse_checkout
from orders.models import Order, StatusChange
from orders.placement import place_order
from tenants.context import tenant_context
from tests.factories import api_client, make_shop, open_all_week

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)  # a Monday, inside opening hours
ERROR_KEYS = {"type", "code", "detail", "attr"}

pytestmark = pytest.mark.django_db


@pytest.fixture
def shops(roster, restaurants):
    for restaurant in restaurants:
        restaurant.delivery_enabled = True
        restaurant.save(update_fields=["delivery_enabled"])
        open_all_week(restaurant)
    return {restaurant.slug: make_shop(restaurant) for restaurant in restaurants}


_keys = iter(range(1, 10_000))


def place(restaurant, ids, *, lines=3, email="ada@example.com", fulfilment="pickup"):
    cart = [
        {
            "item_id": ids["burger"],
            "quantity": 2,
            "modifier_ids": [ids["large"], ids["cheese"]],
            "note": "No onions",
        },
        {"item_id": ids["fries"], "quantity": 1},
        {"item_id": ids["soda"], "quantity": 3},
    ]
    body = {
        "lines": [cart[i % 3] for i in range(lines)],
        "name": "Ada Lovelace",
        "email": email,
        "phone": "+358 40 7654321",
        "fulfilment": fulfilment,
    }
    if fulfilment == "delivery":
        body["address"] = {"line1": "Secret Street 5", "postal_code": "00100", "city": "Helsinki"}
        body["delivery_notes"] = "Ring twice"
    with tenant_context(restaurant):
        order, _ = place_order(
            restaurant=restaurant,
            request=parse_checkout(body, restaurant.zone),
            idempotency_key=f"key-{next(_keys)}",
            now=NOW,
        )
    return order


def set_fields(restaurant, order, **fields):
    with tenant_context(restaurant):
        Order.objects.filter(pk=order.pk).update(**fields)


def list_orders(member, **params):
    return api_client(member).get(reverse("api-orders"), params)


def ids_of(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def post(member, name, pk, body):
    return api_client(member).post(
        reverse(name, kwargs={"pk": pk}), data=json.dumps(body), content_type="application/json"
    )


# --- The list --------------------------------------------------------------------------------


def test_the_list_is_the_queue_oldest_first_and_only_ours(roster, restaurants, shops):
    ours, theirs = restaurants
    orders = [place(ours, shops["ours"]) for _ in range(3)]
    place(theirs, shops["theirs"], email="theirs-diner@example.com")
    # Created out of order: the list follows creation time, not the id.
    start = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    for minutes, order in zip([30, 10, 20], orders, strict=True):
        set_fields(ours, order, created_at=start + timedelta(minutes=minutes))
    owner = roster[("ours", "owner")]
    expected = [orders[1].pk, orders[2].pk, orders[0].pk]
    assert ids_of(list_orders(owner)) == expected
    assert ids_of(list_orders(owner, ordering="-created_at")) == expected[::-1]
    assert "theirs-diner" not in list_orders(owner).content.decode()


def test_list_rows_carry_their_lines_with_options_and_notes(roster, restaurants, shops):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    row = list_orders(roster[("ours", "kitchen")]).json()["results"][0]
    assert row["id"] == order.pk
    assert row["status"] == "placed"
    assert row["next_status"] == "accepted"
    assert [line["name"] for line in row["lines"]] == ["Burger", "Fries", "Soda"]
    burger = row["lines"][0]
    assert [m["name"] for m in burger["modifiers"]] == ["Large", "Cheese"]
    assert (burger["quantity"], burger["note"]) == (2, "No onions")


def test_status_filters_repeat_or_use_commas(roster, restaurants, shops):
    ours = restaurants[0]
    owner = roster[("ours", "owner")]
    placed, accepted, ready, completed, cancelled = (place(ours, shops["ours"]) for _ in range(5))
    for order, status in [
        (accepted, "accepted"),
        (ready, "ready"),
        (completed, "completed"),
        (cancelled, "cancelled"),
    ]:
        set_fields(ours, order, status=status)
    assert ids_of(list_orders(owner, status="ready")) == [ready.pk]
    assert ids_of(list_orders(owner, status="placed,ready")) == [placed.pk, ready.pk]
    assert ids_of(list_orders(owner, status=["placed", "completed"])) == [placed.pk, completed.pk]
    assert ids_of(list_orders(owner, active="true")) == [placed.pk, accepted.pk, ready.pk]
    assert ids_of(list_orders(owner, active="true", status="ready,cancelled")) == [ready.pk]
    assert len(ids_of(list_orders(owner, active="false"))) == 5


def test_fulfilment_filter(roster, restaurants, shops):
    ours = restaurants[0]
    pickup = place(ours, shops["ours"])
    delivery = place(ours, shops["ours"], fulfilment="delivery")
    owner = roster[("ours", "owner")]
    assert ids_of(list_orders(owner, fulfilment="delivery")) == [delivery.pk]
    assert ids_of(list_orders(owner, fulfilment="pickup")) == [pickup.pk]


def test_dates_are_days_in_the_restaurants_time_zone(roster, restaurants, shops):
    ours = restaurants[0]
    ours.timezone = "Europe/Helsinki"  # UTC+2 in January
    ours.save(update_fields=["timezone"])
    late_evening, after_midnight = place(ours, shops["ours"]), place(ours, shops["ours"])
    # 23:30 on the 5th and 00:30 on the 6th in Helsinki; both on the 5th in UTC.
    set_fields(ours, late_evening, created_at=datetime(2025, 1, 5, 21, 30, tzinfo=UTC))
    set_fields(ours, after_midnight, created_at=datetime(2025, 1, 5, 22, 30, tzinfo=UTC))
    owner = roster[("ours", "owner")]
    assert ids_of(list_orders(owner, date_from="2025-01-06")) == [after_midnight.pk]
    assert ids_of(list_orders(owner, date_to="2025-01-05")) == [late_evening.pk]
    both = list_orders(owner, date_from="2025-01-05", date_to="2025-01-06")
    assert ids_of(both) == [late_evening.pk, after_midnight.pk]
    assert ids_of(list_orders(owner, date_from="2025-01-07")) == []


@pytest.mark.parametrize(
    ("params", "attr"),
    [
        ({"status": "eaten"}, "status"),
        ({"status": "placed,"}, None),  # an empty part is ignored
        ({"status": "placed,PLACED"}, "status"),
        ({"active": "maybe"}, "active"),
        ({"active": ["true", "false"]}, "active"),
        ({"date_from": "2025-13-01"}, "date_from"),
        ({"date_to": "yesterday"}, "date_to"),
        ({"date_from": "1999-12-31"}, "date_from"),
        ({"date_from": "2025-01-07", "date_to": "2025-01-06"}, "date_to"),
        ({"fulfilment": "drone"}, "fulfilment"),
        ({"ordering": "total"}, "ordering"),
        ({"status": ",".join(["placed"] * 21)}, "status"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(roster, restaurants, shops, params, attr):
    place(restaurants[0], shops["ours"])
    response = list_orders(roster[("ours", "owner")], **params)
    if attr is None:
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == ERROR_KEYS | {"errors"}
    assert (body["type"], body["attr"]) == ("validation_error", attr)


def test_cursor_pages_walk_every_order_once(roster, restaurants, shops):
    ours = restaurants[0]
    orders = [place(ours, shops["ours"], lines=1) for _ in range(5)]
    owner = roster[("ours", "owner")]
    client = api_client(owner)
    seen, url, pages = [], reverse("api-orders") + "?page_size=2", 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        body = response.json()
        assert len(body["results"]) <= 2
        seen += [row["id"] for row in body["results"]]
        url, pages = body["next"], pages + 1
    assert seen == [order.pk for order in orders]
    assert pages == 3
    newest_first = client.get(reverse("api-orders") + "?page_size=2&ordering=-created_at")
    second = client.get(newest_first.json()["next"]).json()
    assert [row["id"] for row in second["results"]] == [orders[2].pk, orders[1].pk]


@pytest.mark.parametrize(
    "cursor",
    [
        "not-base64!",
        "cD1ub3QtYS10aW1l",  # p=not-a-time
        "cD0yMDI1LTAxLTA2",  # p=2025-01-06 (no time zone)
        "bz0tMQ==",  # o=-1
    ],
)
def test_a_forged_cursor_is_refused_cleanly(roster, restaurants, shops, cursor):
    place(restaurants[0], shops["ours"])
    response = api_client(roster[("ours", "owner")]).get(reverse("api-orders"), {"cursor": cursor})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_list_queries_do_not_grow_with_orders_or_lines(
    roster, restaurants, shops, django_assert_max_num_queries
):
    ours = restaurants[0]
    client = api_client(roster[("ours", "cashier")])
    client.get(reverse("api-me"))  # warm the organization lookup
    place(ours, shops["ours"], lines=3)
    with CaptureQueriesContext(connection) as one:
        assert len(client.get(reverse("api-orders")).json()["results"]) == 1
    for _ in range(19):
        place(ours, shops["ours"], lines=3)
    # Authentication and the tenant setting, then one query for the orders, one for the lines.
    with django_assert_max_num_queries(7) as twenty:
        response = client.get(reverse("api-orders"))
    assert len(response.json()["results"]) == 20
    assert all(len(row["lines"]) == 3 for row in response.json()["results"])
    assert len(one) == len(twenty)


# --- One order -------------------------------------------------------------------------------


def test_detail_has_lines_and_history(roster, restaurants, shops):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    cook = roster[("ours", "kitchen")]
    assert post(cook, "api-order-status", order.pk, {"status": "accepted"}).status_code == 200
    response = api_client(cook).get(reverse("api-order-detail", kwargs={"pk": order.pk}))
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["number"], body["status"]) == (order.pk, order.number, "accepted")
    assert len(body["lines"]) == 3
    history = body["history"]
    assert [(h["from"], h["to"], h["actor_label"]) for h in history] == [
        (None, "placed", "diner"),
        ("placed", "accepted", cook.label),
    ]
    assert all(h["at"] for h in history)


def test_another_restaurants_order_is_404(roster, restaurants, shops):
    theirs_order = place(restaurants[1], shops["theirs"], email="theirs-diner@example.com")
    owner = roster[("ours", "owner")]
    for response in (
        api_client(owner).get(reverse("api-order-detail", kwargs={"pk": theirs_order.pk})),
        post(owner, "api-order-status", theirs_order.pk, {"status": "accepted"}),
        post(owner, "api-order-cancel", theirs_order.pk, {"reason": "x"}),
    ):
        assert response.status_code == 404
        assert "theirs-diner" not in response.content.decode()
    with tenant_context(restaurants[1]):
        assert Order.objects.get(pk=theirs_order.pk).status == "placed"


# --- What the Kitchen role sees --------------------------------------------------------------


def test_the_kitchen_role_never_gets_contact_data(roster, restaurants, shops):
    ours = restaurants[0]
    order = place(ours, shops["ours"], email="private.diner@example.com", fulfilment="delivery")
    cook = roster[("ours", "kitchen")]
    client = api_client(cook)
    answers = {
        "list": client.get(reverse("api-orders")),
        "active": client.get(reverse("api-orders"), {"active": "true"}),
        "detail": client.get(reverse("api-order-detail", kwargs={"pk": order.pk})),
        "status": post(cook, "api-order-status", order.pk, {"status": "accepted"}),
    }
    for name, response in answers.items():
        assert response.status_code == 200, name
        text = response.content.decode()
        body = response.json()
        rows = body.get("results", [body])
        assert rows, name
        for row in rows:
            assert not set(CONTACT_FIELDS) & set(row), name
        for secret in ("private.diner@example.com", "Ada Lovelace", "7654321", "Secret Street"):
            assert secret not in text, (name, secret)
        assert "Ring twice" not in text


@pytest.mark.parametrize("role", ["cashier", "manager", "owner"])
def test_cashier_and_up_get_contact_data(roster, restaurants, shops, role):
    ours = restaurants[0]
    order = place(ours, shops["ours"], email="private.diner@example.com", fulfilment="delivery")
    client = api_client(roster[("ours", role)])
    row = client.get(reverse("api-orders")).json()["results"][0]
    detail = client.get(reverse("api-order-detail", kwargs={"pk": order.pk})).json()
    for body in (row, detail):
        assert set(CONTACT_FIELDS) <= set(body)
        assert body["contact_email"] == "private.diner@example.com"
        assert body["contact_name"] == "Ada Lovelace"
        assert body["delivery_address"]["line1"] == "Secret Street 5"
        assert body["delivery_notes"] == "Ring twice"
        assert body["customer"] == order.customer_id


# --- Moving and cancelling -------------------------------------------------------------------


def test_the_status_endpoint_moves_one_step_and_a_repeat_changes_nothing(
    roster, restaurants, shops
):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    cook = roster[("ours", "kitchen")]
    first = post(cook, "api-order-status", order.pk, {"status": "accepted"})
    again = post(cook, "api-order-status", order.pk, {"status": "accepted"})
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["status"] == again.json()["status"] == "accepted"
    assert first.json()["accepted_at"] == again.json()["accepted_at"]
    with tenant_context(ours):
        assert StatusChange.objects.filter(order_id=order.pk, to_status="accepted").count() == 1


@pytest.mark.parametrize(
    ("body", "status", "code", "attr"),
    [
        ({"status": "ready"}, 409, "illegal_transition", "status"),
        ({"status": "pending_payment"}, 409, "illegal_transition", "status"),
        ({"status": "eaten"}, 400, "invalid", "status"),
        ({"status": ""}, 400, "blank", "status"),
        ({"status": None}, 400, "null", "status"),
        ({}, 400, "required", "status"),
        ({"status": "accepted", "restaurant": 2}, 400, "read_only", "restaurant"),
        ({"status": "accepted\x00"}, 400, "null_characters_not_allowed", "status"),
        (["accepted"], 400, "invalid", None),
    ],
)
def test_status_endpoint_errors_change_nothing(
    roster, restaurants, shops, body, status, code, attr
):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    response = post(roster[("ours", "owner")], "api-order-status", order.pk, body)
    assert response.status_code == status, response.content
    error = response.json()
    assert set(error) == ERROR_KEYS | ({"errors"} if status == 400 else set())
    assert (error["code"], error["attr"]) == (code, attr)
    with tenant_context(ours):
        assert Order.objects.get(pk=order.pk).status == "placed"


@pytest.mark.parametrize("role", ["kitchen", "cashier"])
def test_cancelling_through_the_status_endpoint_needs_the_cancel_scope(
    roster, restaurants, shops, role
):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    response = post(roster[("ours", role)], "api-order-status", order.pk, {"status": "cancelled"})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    with tenant_context(ours):
        assert Order.objects.get(pk=order.pk).status == "placed"


def test_a_manager_cancels_with_a_reason(roster, restaurants, shops):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    manager = roster[("ours", "manager")]
    response = post(manager, "api-order-cancel", order.pk, {"reason": "Kitchen fire"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["cancel_reason"]) == ("cancelled", "Kitchen fire")
    assert body["history"][-1]["to"] == "cancelled"
    assert body["next_status"] is None
    with tenant_context(ours):
        event = AuditEvent.objects.get(action="order.cancelled")
    assert event.target_id == str(order.pk)
    assert event.changes["reason"]["after"] == "Kitchen fire"


@pytest.mark.parametrize(
    ("body", "status", "code", "attr"),
    [
        ({"reason": "x" * 301}, 400, "max_length", "reason"),
        ({"reason": "Closed", "status": "placed"}, 400, "read_only", "status"),
        ({"reason": 5}, 200, None, None),  # a number is read as its text
    ],
)
def test_cancel_endpoint_input(roster, restaurants, shops, body, status, code, attr):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    response = post(roster[("ours", "owner")], "api-order-cancel", order.pk, body)
    assert response.status_code == status, response.content
    with tenant_context(ours):
        current = Order.objects.get(pk=order.pk).status
    if status == 200:
        assert current == "cancelled"
        return
    assert (response.json()["code"], response.json()["attr"]) == (code, attr)
    assert current == "placed"
    with tenant_context(ours):
        assert not AuditEvent.objects.filter(action="order.cancelled").exists()


def test_a_completed_order_cannot_be_cancelled(roster, restaurants, shops):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    set_fields(ours, order, status="completed")
    response = post(roster[("ours", "owner")], "api-order-cancel", order.pk, {"reason": "Late"})
    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"
    with tenant_context(ours):
        assert Order.objects.get(pk=order.pk).status == "completed"


@pytest.mark.parametrize("role", ["kitchen", "cashier"])
def test_kitchen_and_cashier_cannot_cancel(roster, restaurants, shops, role):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    response = post(roster[("ours", role)], "api-order-cancel", order.pk, {"reason": "x"})
    assert response.status_code == 403
    with tenant_context(ours):
        assert Order.objects.get(pk=order.pk).status == "placed"
