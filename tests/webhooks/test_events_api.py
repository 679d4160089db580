"""GET /api/v1/events, /api/v1/events/{id} and /api/v1/events/types: the restaurant's event
log as its reader may see it, newest first, filtered, paged without gaps, and the catalogue
(in the API and in the OpenAPI document)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import Event
from menus.events import ITEM_SOLD_OUT_CHANGED
from nordkestrel import events
from orders.checkout_request import parse_checkout
from orders.placement import place_order
from staff.roles import Scope
from tenants.context import tenant_context
from tests.factories import api_client, key_client, make_api_key, make_shop, open_all_week
from tests.payments.money_support import NOW
from tests.support.events import PINGED
from tests.support.openapi import api_document, assert_matches_schema
from webhooks import messages

pytestmark = pytest.mark.django_db

LIST = "/api/v1/events"
DETAIL = "/api/v1/events/{id}"
TYPES = "/api/v1/events/types"


def publish(restaurant, *made: events.Event) -> list[str]:
    with tenant_context(restaurant):
        events.publish(*made)
    return [str(event.id) for event in made]


def ping(restaurant, n: int, at: datetime) -> events.Event:
    return PINGED.new(
        restaurant_id=restaurant.pk,
        payload={"n": n, "contact": {"email": f"diner{n}@example.com"}},
        occurred_at=at,
    )


def sold_out(restaurant, item_id: int, at: datetime) -> events.Event:
    return ITEM_SOLD_OUT_CHANGED.new(
        restaurant_id=restaurant.pk,
        payload={
            "kind": "item",
            "id": item_id,
            "name": "Fries",
            "sold_out": True,
            "changed_at": events.timestamp(at),
        },
        occurred_at=at,
    )


def listed(client, query: str = "") -> dict:
    response = client.get(f"{LIST}?{query}" if query else LIST)
    assert response.status_code == 200, response.content
    assert_matches_schema(response, "GET", LIST)
    return response.json()


def every_page(client, query: str) -> list[list[dict]]:
    pages, url = [], f"{LIST}?{query}"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        assert_matches_schema(response, "GET", LIST)
        body = response.json()
        pages.append(body["results"])
        url = body["next"]
        assert len(pages) < 20, "the pages never end"
    return pages


def refused(response, *attrs: str) -> list[str]:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "validation_error"
    assert [problem["attr"] for problem in body["errors"]] == list(attrs)
    return [problem["code"] for problem in body["errors"]]


def test_pages_follow_one_another_newest_first_without_gaps_or_duplicates(roster):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    now = timezone.now()
    # Ten events; four of them at the same instant, across a page boundary.
    tied = now - timedelta(minutes=30)
    made = [ping(ours, n, now - timedelta(minutes=n)) for n in range(1, 7)]
    made += [ping(ours, n, tied) for n in range(7, 11)]
    publish(ours, *made)
    expected = sorted(made, key=lambda e: (e.occurred_at, e.id), reverse=True)

    pages = every_page(api_client(owner), "type=test.pinged&page_size=3")

    assert [len(page) for page in pages] == [3, 3, 3, 1]
    seen = [item["id"] for page in pages for item in page]
    assert seen == [str(event.id) for event in expected]
    times = [item["timestamp"] for page in pages for item in page]
    assert times == sorted(times, reverse=True)


def test_an_item_is_its_webhook_messages_body_with_its_id_and_version(roster):
    owner = roster[("ours", "owner")]
    event = ping(owner.restaurant, 7, timezone.now() - timedelta(hours=1, microseconds=17))
    publish(owner.restaurant, event)

    (item,) = listed(api_client(owner), "type=test.pinged")["results"]

    webhook_body = json.loads(messages.body(event.type, event.occurred_at, event.payload))
    assert item == {"id": str(event.id), "version": 1, **webhook_body}
    assert item["timestamp"] == event.occurred_at.astimezone(UTC).isoformat()
    assert item["data"] == {"n": 7, "contact": {"email": "diner7@example.com"}}


def test_the_type_filter_takes_one_or_several_types_and_refuses_unknown_ones(roster):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    now = timezone.now()
    pings = publish(ours, ping(ours, 1, now - timedelta(minutes=3)))
    sold = publish(ours, sold_out(ours, 5, now - timedelta(minutes=2)))
    client = api_client(owner)

    def ids(query: str) -> set[str]:
        return {item["id"] for item in listed(client, query)["results"]}

    assert ids("type=test.pinged") == set(pings)
    assert ids("type=item.sold_out_changed") == set(sold)
    assert ids("type=test.pinged&type=item.sold_out_changed") == set(pings + sold)
    assert ids("type=test.pinged,item.sold_out_changed") == set(pings + sold)
    assert {item["type"] for item in listed(client)["results"]} >= {
        "test.pinged",
        "item.sold_out_changed",
    }

    unknown = client.get(f"{LIST}?type=order.placed&type=order.eaten&type=nothing")
    assert refused(unknown, "type.1", "type.2") == ["unknown_event_type"] * 2
    assert_matches_schema(unknown, "GET", LIST)
    # A type the reader may not see is named as such, not answered with an empty list.
    kitchen = api_client(roster[("ours", "kitchen")])
    assert refused(kitchen.get(f"{LIST}?type=customer.created"), "type.0") == ["scope_not_held"]


def test_since_and_until_bound_the_time_it_happened(roster):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    base = (timezone.now() - timedelta(hours=5)).replace(microsecond=0)
    first, second, third = (
        publish(ours, ping(ours, n, base + timedelta(hours=n)))[0] for n in (1, 2, 3)
    )
    client = api_client(owner)

    def ids(**bounds: str) -> list[str]:
        query = urlencode({"type": "test.pinged", **bounds})
        return [item["id"] for item in listed(client, query)["results"]]

    at_second = (base + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    at_third = (base + timedelta(hours=3)).astimezone(UTC).isoformat()
    assert ids(since=at_second) == [third, second], "since includes its own instant"
    assert ids(until=at_third) == [second, first], "until excludes its own instant"
    assert ids(since=at_second, until=at_third) == [second]
    # Another offset, and no offset (UTC), name the same instants.
    helsinki = (base + timedelta(hours=2)).astimezone(timezone.get_fixed_timezone(120))
    assert ids(since=helsinki.isoformat()) == [third, second]
    assert ids(since=at_second.removesuffix("Z")) == [third, second]

    bad = client.get(f"{LIST}?since=yesterday&until=2026-13-45T00:00:00Z")
    assert refused(bad, "since", "until") == ["invalid", "invalid"]
    assert_matches_schema(bad, "GET", LIST)
    backwards = client.get(f"{LIST}?{urlencode({'since': at_third, 'until': at_second})}")
    assert refused(backwards, "until") == ["invalid"]
    # Before the first instant there is, once in UTC.
    assert refused(client.get(f"{LIST}?since=0001-01-01T00:00:00%2B05:00"), "since")


def test_events_older_than_the_retention_are_not_listed(roster, settings):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    now = timezone.now()
    (old,) = publish(ours, ping(ours, 1, now - timedelta(days=31)))
    (kept,) = publish(ours, ping(ours, 2, now - timedelta(days=29)))
    client = api_client(owner)

    assert [i["id"] for i in listed(client, "type=test.pinged")["results"]] == [kept]
    assert client.get(f"{LIST}/{old}").status_code == 404
    assert client.get(f"{LIST}/{kept}").status_code == 200
    # Asking for earlier does not reach past it either.
    since = (now - timedelta(days=60)).isoformat()
    query = urlencode({"type": "test.pinged", "since": since})
    assert [i["id"] for i in listed(client, query)["results"]] == [kept]
    settings.EVENT_RETENTION_DAYS = 40
    assert len(listed(client, "type=test.pinged")["results"]) == 2


@pytest.fixture
def checked_out(restaurants):
    """An order placed at checkout (order.placed, customer.created, its diner's contact
    details), its events moved into the retention window."""
    ours = restaurants[0]
    open_all_week(ours)
    ids = make_shop(ours)
    body = {
        "lines": [{"item_id": ids["fries"], "quantity": 1}],
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+358 40 1234567",
    }
    with tenant_context(ours):
        order, created = place_order(
            restaurant=ours,
            request=parse_checkout(body, ours.zone),
            idempotency_key=uuid.uuid4().hex,
            now=NOW,
        )
        assert created
        Event.objects.filter(occurred_at__lte=NOW).update(
            occurred_at=timezone.now() - timedelta(minutes=1)
        )
    return order


def _order_events(client) -> dict[str, dict]:
    results = listed(client)["results"]
    return {item["type"]: item for item in results if item["type"] != "menu.published"}


def test_readers_see_what_their_scopes_allow(roster, checked_out):
    owner = roster[("ours", "owner")]
    seen = _order_events(api_client(owner))
    assert set(seen) == {"order.placed", "customer.created"}
    assert seen["order.placed"]["data"]["contact"]["email"] == "ada@example.com"
    assert seen["order.placed"]["data"]["order"]["id"] == checked_out.pk

    # Kitchen staff read orders, not diners: no contact, no customer events.
    kitchen = _order_events(api_client(roster[("ours", "kitchen")]))
    assert set(kitchen) == {"order.placed"}
    assert "contact" not in kitchen["order.placed"]["data"]
    assert kitchen["order.placed"]["data"]["order"] == seen["order.placed"]["data"]["order"]

    orders_key = key_client(make_api_key(owner, grants={"orders": "read"}))
    by_key = _order_events(orders_key)
    assert set(by_key) == {"order.placed"}
    assert "contact" not in by_key["order.placed"]["data"]
    customer_id = seen["customer.created"]["id"]
    assert orders_key.get(f"{LIST}/{customer_id}").status_code == 404

    with_customers = key_client(make_api_key(owner, grants={"orders": "read", "customers": "read"}))
    full = _order_events(with_customers)
    assert full["order.placed"]["data"]["contact"]["email"] == "ada@example.com"
    assert set(full) == {"order.placed", "customer.created"}

    menus_key = key_client(make_api_key(owner, grants={"menus": "read"}))
    assert {item["type"] for item in listed(menus_key)["results"]} == {"menu.published"}
    order_event = seen["order.placed"]["id"]
    assert menus_key.get(f"{LIST}/{order_event}").status_code == 404


def test_one_event_is_read_by_its_id_and_others_are_not_found(roster):
    owner, theirs_owner = roster[("ours", "owner")], roster[("theirs", "owner")]
    now = timezone.now()
    (ours_id,) = publish(owner.restaurant, ping(owner.restaurant, 1, now))
    (theirs_id,) = publish(theirs_owner.restaurant, ping(theirs_owner.restaurant, 2, now))
    client = api_client(owner)

    found = client.get(f"{LIST}/{ours_id}")
    assert found.status_code == 200, found.content
    assert_matches_schema(found, "GET", DETAIL)
    assert found.json()["id"] == ours_id
    assert found.json() == listed(client, "type=test.pinged")["results"][0]
    # Not the restaurant's, no such event, not an id at all: the same 404.
    for missing in (theirs_id, str(uuid.uuid4()), "not-an-id", ours_id.upper() + "0"):
        response = client.get(f"{LIST}/{missing}")
        assert response.status_code == 404, missing
        assert response.json()["code"] == "not_found"
    assert_matches_schema(client.get(f"{LIST}/{theirs_id}"), "GET", DETAIL)
    # And the other restaurant reads its own.
    assert api_client(theirs_owner).get(f"{LIST}/{theirs_id}").status_code == 200


def test_a_restaurant_never_lists_another_restaurants_events(roster):
    owner, theirs_owner = roster[("ours", "owner")], roster[("theirs", "owner")]
    now = timezone.now()
    ours_ids = publish(owner.restaurant, *(ping(owner.restaurant, n, now) for n in (1, 2)))
    theirs_ids = publish(
        theirs_owner.restaurant, *(ping(theirs_owner.restaurant, n, now) for n in (3, 4, 5))
    )

    for member, own, other in ((owner, ours_ids, theirs_ids), (theirs_owner, theirs_ids, ours_ids)):
        pages = every_page(api_client(member), "page_size=1")
        seen = [item["id"] for page in pages for item in page]
        assert set(seen) == set(own)
        assert not set(seen) & set(other)


def test_the_catalogue_lists_every_type_with_its_schema(roster):
    response = api_client(roster[("ours", "kitchen")]).get(TYPES)
    assert response.status_code == 200, response.content
    assert_matches_schema(response, "GET", TYPES)
    results = response.json()["results"]

    assert [entry["name"] for entry in results] == [e.name for e in events.catalogue()]
    by_name = {entry["name"]: entry for entry in results}
    placed = by_name["order.placed"]
    registered = events.catalogue_entry("order.placed")
    assert placed["version"] == registered.version
    assert placed["scope"] == Scope.ORDERS_READ
    assert placed["description"] == registered.description
    assert placed["schema"] == json.loads(json.dumps(registered.schema))
    assert placed["restricted_fields"] == {"contact": Scope.CUSTOMERS_READ}
    assert by_name["customer.created"]["scope"] == Scope.CUSTOMERS_READ
    assert by_name["menu.published"]["restricted_fields"] == {}
    # Any key may read it: every key reads the restaurant.
    key = key_client(make_api_key(roster[("ours", "owner")], grants={"menus": "read"}))
    assert key.get(TYPES).json()["results"] == results


def test_credentials_are_required_and_a_forged_cursor_points_nowhere(roster):
    assert api_client(None).get(LIST).status_code == 401
    assert api_client(None).get(TYPES).status_code == 401
    client = api_client(roster[("ours", "owner")])
    for cursor in ("garbage", "cD0yMDI2LTAxLTAx", "cD1ub3QtYS10aW1l"):
        response = client.get(f"{LIST}?cursor={cursor}")
        assert response.status_code == 404, (cursor, response.content)
        assert_matches_schema(response, "GET", LIST)


def test_a_page_costs_the_same_queries_however_many_events_it_holds(roster):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    client = api_client(owner)
    publish(ours, ping(ours, 0, timezone.now()))
    listed(client)  # the credential's first look-ups

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            listed(client, "type=test.pinged")
        return len(captured)

    few = queries()
    publish(ours, *(ping(ours, n, timezone.now()) for n in range(1, 30)))
    assert queries() == few


def test_the_document_has_a_component_per_event_type():
    document = api_document()
    schemas = document["components"]["schemas"]
    for entry in events.catalogue():
        component = schemas[f"Event_{entry.name.replace('.', '_')}"]
        assert component["required"] == ["type", "timestamp", "data"]
        assert component["properties"]["type"] == {"type": "string", "enum": [entry.name]}
        assert component["properties"]["data"]["type"] == "object"
    placed = schemas["Event_order_placed"]["properties"]["data"]
    # Readers without customers:read never receive the contact: it is not required.
    assert placed["required"] == ["order"]
    assert placed["properties"]["contact"]["x-scope"] == Scope.CUSTOMERS_READ
    # OpenAPI 3.0: a nullable field, not a list of types.
    order = placed["properties"]["order"]["properties"]
    assert order["placed_at"] == {"type": "string", "nullable": True, "format": "date-time"}
    menu = schemas["Event_menu_published"]["properties"]["data"]["properties"]
    assert menu["published_by_id"] == {"type": "integer", "nullable": True}
    listing = document["paths"][LIST]["get"]
    (type_filter,) = [p for p in listing["parameters"] if p["name"] == "type"]
    assert type_filter["schema"]["items"]["enum"] == [e.name for e in events.catalogue()]
    assert "Event_order_placed" in listing["description"]
