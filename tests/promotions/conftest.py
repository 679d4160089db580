import itertools
from datetime import UTC, datetime

import pytest

from orders.checkout_request import parse_checkout
from orders.placement import place_order
from promotions import services
from promotions.models import Promotion
from staff.auth import Actor
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
def redeem(shop, restaurants):
    """Place an order at ours using ``code``: a real redemption through checkout."""
    numbers = itertools.count(1)

    def place(code: str, email: str = "ada@example.com"):
        ours = restaurants[0]
        body = {
            "lines": [
                {"item_id": shop["burger"], "quantity": 2, "modifier_ids": [shop["regular"]]}
            ],
            "name": "Ada Lovelace",
            "email": email,
            "promotion_code": code,
        }
        with tenant_context(ours):
            order, _ = place_order(
                restaurant=ours,
                request=parse_checkout(body, ours.zone),
                idempotency_key=f"promo-{next(numbers)}",
                now=NOW,
            )
        return order

    return place


@pytest.fixture
def create(roster, restaurants):
    """Create a promotion at ours as its Manager (the service, as the API and pages do)."""

    def make(**fields) -> Promotion:
        values = {"code": "SPRING10", "kind": "percent", "value": 10, **fields}
        with tenant_context(restaurants[0]):
            return services.promotion_create(
                actor=Actor(member=roster[("ours", "manager")]), **values
            )

    return make
