import json

import pytest
from django.urls import reverse

from tenants.context import tenant_context
from tenants.models import OpeningHours, Restaurant
from tests.factories import api_client
from tests.support.openapi import assert_matches_schema

pytestmark = pytest.mark.django_db


def send(client, method, name, body):
    return getattr(client, method)(
        reverse(name), data=json.dumps(body), content_type="application/json"
    )


def test_owner_updates_settings(roster, restaurants):
    client = api_client(roster[("ours", "admin")])
    response = send(
        client,
        "patch",
        "api-restaurant",
        {"name": "Ours Bistro", "timezone": "Europe/Helsinki", "tax_rate": "14.000"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Ours Bistro"
    fresh = Restaurant.objects.get(pk=restaurants[0].pk)
    assert (fresh.name, fresh.timezone, str(fresh.tax_rate)) == (
        "Ours Bistro",
        "Europe/Helsinki",
        "14.000",
    )
    assert Restaurant.objects.get(pk=restaurants[1].pk).name != "Ours Bistro"


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"tax_rate": "101"}, "tax_rate"),
        ({"currency": "euro"}, "currency"),
        ({"delivery_fee": -5}, "delivery_fee"),
        ({"name": ""}, "name"),
        ({"prep_time_minutes": "soon"}, "prep_time_minutes"),
    ],
)
def test_invalid_settings_name_the_field_and_change_nothing(roster, restaurants, body, attr):
    before = Restaurant.objects.get(pk=restaurants[0].pk)
    response = send(api_client(roster[("ours", "owner")]), "patch", "api-restaurant", body)
    assert response.status_code == 400
    assert response.json()["attr"] == attr
    after = Restaurant.objects.get(pk=restaurants[0].pk)
    assert (after.timezone, after.tax_rate, after.currency, after.name) == (
        before.timezone,
        before.tax_rate,
        before.currency,
        before.name,
    )


def test_non_object_body_is_a_400(roster):
    client = api_client(roster[("ours", "owner")])
    response = client.patch(
        reverse("api-restaurant"), data="[1, 2]", content_type="application/json"
    )
    assert response.status_code == 400


def test_opening_hours_are_replaced_as_a_whole(roster, restaurants):
    _, theirs = restaurants
    with tenant_context(theirs):
        OpeningHours.objects.create(weekday=0, opens="08:00", closes="12:00")
    body = {
        "weekly": [
            {"weekday": 0, "opens": "11:00", "closes": "22:00"},
            {"weekday": 5, "opens": "18:00", "closes": "02:00"},
        ],
        "exceptions": [{"date": "2026-12-24", "closed": True, "note": "Christmas Eve"}],
    }
    response = send(api_client(roster[("ours", "admin")]), "put", "api-opening-hours", body)
    assert response.status_code == 200, response.content
    assert response.json()["weekly"][1] == {"weekday": 5, "opens": "18:00:00", "closes": "02:00:00"}
    assert response.json()["exceptions"][0]["note"] == "Christmas Eve"
    assert_matches_schema(response, "PUT", "/api/v1/restaurant/opening-hours")
    with tenant_context(theirs):
        assert OpeningHours.objects.count() == 1, "another restaurant's hours are untouched"


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        (
            {"weekly": [{"weekday": 0, "opens": "10:00", "closes": "10:00"}], "exceptions": []},
            "weekly.0",
        ),
        (
            {
                "weekly": [
                    {"weekday": 1, "opens": "10:00", "closes": "12:00"},
                    {"weekday": 1, "opens": "10:00", "closes": "14:00"},
                ],
                "exceptions": [],
            },
            "weekly.1",
        ),
        ({"weekly": [{"weekday": 9, "opens": "10:00", "closes": "12:00"}], "exceptions": []},
         "weekly.0.weekday"),
        ({"weekly": [], "exceptions": [{"date": "2026-01-01", "closed": False}]}, "exceptions.0"),
        ({"weekly": [{"weekday": 1, "opens": "10:00", "closes": "12:00", "restaurant": 2}],
          "exceptions": []}, "weekly.0.restaurant"),
    ],
)  # fmt: skip
def test_invalid_opening_hours_are_refused_whole(roster, restaurants, body, attr):
    with tenant_context(restaurants[0]):
        OpeningHours.objects.create(weekday=3, opens="09:00", closes="17:00")
    response = send(api_client(roster[("ours", "owner")]), "put", "api-opening-hours", body)
    assert response.status_code == 400
    assert response.json()["attr"] == attr
    with tenant_context(restaurants[0]):
        assert list(OpeningHours.objects.values_list("weekday", flat=True)) == [3]


def test_opening_hours_read_as_the_schema_declares_them(roster, restaurants):
    with tenant_context(restaurants[0]):
        OpeningHours.objects.create(weekday=2, opens="00:01", closes="23:59:30")
    response = api_client(roster[("ours", "owner")]).get(reverse("api-opening-hours"))
    assert response.json()["weekly"] == [{"weekday": 2, "opens": "00:01:00", "closes": "23:59:30"}]
    assert_matches_schema(response, "GET", "/api/v1/restaurant/opening-hours")


@pytest.mark.parametrize("time", ["12:00:00+02:00", "12", "7:30", "24:00", "12:00:00.5", 1200])
def test_an_opening_time_is_a_wall_clock_time_or_a_400(roster, restaurants, time):
    body = {"weekly": [{"weekday": 1, "opens": time, "closes": "14:00"}], "exceptions": []}
    response = send(api_client(roster[("ours", "owner")]), "put", "api-opening-hours", body)
    assert response.status_code == 400, response.content
    assert response.json()["attr"] == "weekly.0.opens"
