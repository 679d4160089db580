import itertools
from datetime import UTC, datetime

import pytest

from customers.models import Customer
from orders.checkout_request import parse_checkout
from orders.placement import place_order
from tenants.context import tenant_context
from tests.factories import make_shop, open_all_week

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday, inside opening hours


@pytest.fixture
def shop(restaurants):
    ours, theirs = restaurants
    open_all_week(ours)
    open_all_week(theirs)
    return make_shop(ours)


@pytest.fixture
def order(shop, restaurants):
    """Check out at ours as a diner: the way customers come to exist."""
    keys = itertools.count(1)

    def place(email: str, *, name: str = "Ada Lovelace", now: datetime = NOW, **fields):
        ours = restaurants[0]
        body = {
            "lines": [{"item_id": shop["fries"], "quantity": 1}],
            "name": name,
            "email": email,
            **fields,
        }
        with tenant_context(ours):
            placed, _ = place_order(
                restaurant=ours,
                request=parse_checkout(body, ours.zone),
                idempotency_key=f"customer-{next(keys)}",
                now=now,
            )
        return placed

    return place


@pytest.fixture
def customer(restaurants):
    """A customer row at ``restaurant`` (ours by default), for list and search tests."""

    def make(email: str, restaurant=None, **fields) -> Customer:
        with tenant_context(restaurant or restaurants[0]):
            return Customer.objects.create(email=email, name=fields.pop("name", "Diner"), **fields)

    return make
