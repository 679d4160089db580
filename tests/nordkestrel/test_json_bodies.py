"""JSON bodies the API refuses, whichever view they reach: too deep or malformed is a 400
``parse_error``, too large a 413, always in the error shape, and nothing is written."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from menus.models import Menu
from orders.models import Order
from tenants.context import tenant_context
from tenants.models import OpeningHours, Restaurant
from tests.factories import api_client, make_shop, open_all_week

pytestmark = pytest.mark.django_db

SHAPE = {"type", "code", "detail", "attr"}

DEEP = {
    "arrays 100,000 deep": "[" * 100_000,
    "arrays 100,000 deep and closed": "[" * 100_000 + "]" * 100_000,
    "objects 100,000 deep": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "a real field nested 100,000 deep": '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "a real field nested 65 deep": '{"name": ' + "[" * 64 + "]" * 64 + "}",
    "NaN": '{"name": NaN}',
    "not UTF-8": b'{"name": "\xff"}',
}


def assert_parse_error(response):
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert set(body) == SHAPE | {"errors"}
    assert (body["type"], body["code"]) == ("invalid_request", "parse_error")


def send(client, method, url, data):
    return getattr(client, method)(url, data=data, content_type="application/json")


def menus(restaurant):
    with tenant_context(restaurant):
        return list(Menu.objects.values_list("name", flat=True))


@pytest.mark.parametrize("case", list(DEEP))
def test_a_deep_or_malformed_body_to_the_staff_api_is_a_400_and_writes_nothing(
    roster, restaurants, case
):
    ours = restaurants[0]
    client = api_client(roster[("ours", "owner")])

    assert_parse_error(send(client, "post", reverse("api-menus"), DEEP[case]))
    assert_parse_error(send(client, "patch", reverse("api-restaurant"), DEEP[case]))
    assert_parse_error(send(client, "put", reverse("api-opening-hours"), DEEP[case]))

    assert menus(ours) == []
    assert Restaurant.objects.get(pk=ours.pk).name == ours.name
    with tenant_context(ours):
        assert not OpeningHours.objects.exists()


def test_nesting_up_to_the_limit_reaches_the_view(roster):
    """64 levels are read: the view answers about the field, not about the JSON."""
    client = api_client(roster[("ours", "owner")])
    response = send(client, "post", reverse("api-menus"), '{"name": ' + "[" * 63 + "]" * 63 + "}")
    assert response.status_code == 400
    assert response.json()["attr"] == "name"


@pytest.mark.parametrize("case", list(DEEP))
def test_a_deep_or_malformed_checkout_is_a_400_and_places_nothing(restaurants, case):
    ours = restaurants[0]
    open_all_week(ours)
    make_shop(ours)
    client = Client(raise_request_exception=False, HTTP_HOST="ours.localhost")

    response = client.post(
        reverse("api-storefront-checkout", urlconf="storefront.urls"),
        data=DEEP[case],
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="deep-body-1",
    )

    assert_parse_error(response)
    with tenant_context(ours):
        assert not Order.objects.exists()


def test_an_oversized_body_is_a_413_and_writes_nothing(roster, restaurants, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    ours = restaurants[0]
    client = api_client(roster[("ours", "owner")])
    fits = json.dumps({"name": "x" * 9_000})
    too_big = json.dumps({"name": "Lunch", "description": "x" * 20_000})

    assert send(client, "post", reverse("api-menus"), too_big).status_code == 413
    response = send(client, "patch", reverse("api-restaurant"), too_big)
    assert response.status_code == 413
    assert set(response.json()) == SHAPE
    assert response.json()["code"] == "payload_too_large"
    assert menus(ours) == []
    assert Restaurant.objects.get(pk=ours.pk).name == ours.name
    # Just under the limit, the same endpoint reads the body and judges its fields.
    response = send(client, "post", reverse("api-menus"), fits)
    assert (response.status_code, response.json()["attr"]) == (400, "name")


def test_an_oversized_checkout_is_a_413(restaurants, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    ours = restaurants[0]
    open_all_week(ours)
    make_shop(ours)
    client = Client(raise_request_exception=False, HTTP_HOST="ours.localhost")

    response = client.post(
        reverse("api-storefront-checkout", urlconf="storefront.urls"),
        data=json.dumps({"name": "x" * 20_000}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="big-body-1",
    )

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    with tenant_context(ours):
        assert not Order.objects.exists()
