import csv
import io
import itertools
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from orders.checkout_request import parse_checkout
from orders.placement import place_order
from tenants.context import tenant_context
from tests.factories import api_client, make_shop, open_all_week

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday, inside opening hours
BOM = b"\xef\xbb\xbf"

_keys = itertools.count(1)


@pytest.fixture
def shops(roster, restaurants):
    """Both restaurants sell the same menu; ours is in Helsinki."""
    ours = restaurants[0]
    ours.timezone = "Europe/Helsinki"
    ours.delivery_enabled = True
    ours.save(update_fields=["timezone", "delivery_enabled"])
    for restaurant in restaurants:
        open_all_week(restaurant, "00:00", "23:59")
    return {restaurant.slug: make_shop(restaurant) for restaurant in restaurants}


def place(restaurant, ids, *, name="Ada Lovelace", email="ada@example.com", now=NOW, **fields):
    """A placed order: two large burgers with cheese, and fries."""
    body = {
        "lines": [
            {
                "item_id": ids["burger"],
                "quantity": 2,
                "modifier_ids": [ids["large"], ids["cheese"]],
                "note": "No onions",
            },
            {"item_id": ids["fries"], "quantity": 1},
        ],
        "name": name,
        "email": email,
        "phone": "040 123 4567",
        **fields,
    }
    with tenant_context(restaurant):
        order, _ = place_order(
            restaurant=restaurant,
            request=parse_checkout(body, restaurant.zone),
            idempotency_key=f"export-{next(_keys)}",
            now=now,
        )
    return order


def export(member, export_type, **params):
    return api_client(member).get(
        reverse("api-export-csv", kwargs={"export_type": export_type}), params
    )


def body_of(response) -> bytes:
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


def rows_of(response) -> list[dict[str, str]]:
    """The CSV as dicts, read the way any client reads it (Python's csv module)."""
    text = body_of(response).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def header_of(response) -> list[str]:
    text = body_of(response).decode("utf-8")
    return next(csv.reader(io.StringIO(text, newline="")))
