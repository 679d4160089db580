"""A refunded order, and one whose refund failed: back to the status it had, counted again
with its code use; a cancelled order stays cancelled when its money goes back."""

from datetime import UTC, datetime

import pytest

from audit.services import SystemActor
from customers.models import Customer
from orders.checkout_request import parse_checkout
from orders.models import Order, Status, StatusChange
from orders.placement import place_order
from orders.services import (
    order_mark_refunded,
    order_transition,
    order_unmark_refunded,
)
from promotions.models import Promotion, Redemption
from staff.auth import Actor
from tenants.context import tenant_context
from tests.factories import make_shop, open_all_week

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday, inside opening hours
STRIPE = SystemActor("stripe")

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(restaurants, roster):
    """An order placed with a one-use code, accepted by the kitchen."""
    ours = restaurants[0]
    open_all_week(ours)
    ids = make_shop(ours)
    with tenant_context(ours):
        Promotion.objects.create(
            code="ONCE", kind=Promotion.Kind.PERCENT, value=10, max_redemptions=1
        )
        placed, _ = place_order(
            restaurant=ours,
            request=parse_checkout(
                {
                    "lines": [{"item_id": ids["fries"], "quantity": 2}],
                    "name": "Ada",
                    "email": "ada@example.com",
                    "promotion_code": "ONCE",
                },
                ours.zone,
            ),
            idempotency_key="refunded-1",
            now=NOW,
        )
        order_transition(
            actor=Actor(member=roster[("ours", "manager")]),
            order_id=placed.pk,
            to_status="accepted",
        )
        return Order.objects.get(pk=placed.pk)


def state(restaurant, order: Order) -> dict:
    with tenant_context(restaurant):
        fresh = Order.objects.get(pk=order.pk)
        customer = Customer.objects.get(pk=fresh.customer_id)
        return {
            "status": fresh.status,
            "refunded_at": fresh.refunded_at is not None,
            "accepted_at": fresh.accepted_at,
            "order_count": customer.order_count,
            "code_uses": Promotion.objects.get(code="ONCE").redemption_count,
            "counted": Redemption.objects.get(order=fresh).counted,
            "history": list(
                StatusChange.objects.filter(order=fresh)
                .order_by("at", "id")
                .values_list("from_status", "to_status", "actor_label")
            ),
        }


def test_a_failed_refund_puts_the_order_back_where_it_was(restaurants, order):
    ours = restaurants[0]
    before = state(ours, order)
    with tenant_context(ours):
        order_mark_refunded(order_id=order.pk, actor=STRIPE)
    refunded = state(ours, order)
    assert (refunded["status"], refunded["order_count"], refunded["code_uses"]) == (
        "refunded",
        0,
        0,
    )
    with tenant_context(ours):
        order_unmark_refunded(order_id=order.pk, actor=STRIPE)
        order_unmark_refunded(order_id=order.pk, actor=STRIPE)  # once is all it takes
    after = state(ours, order)
    assert after["status"] == "accepted"
    assert after["refunded_at"] is False
    assert after["accepted_at"] == before["accepted_at"]  # its own times are kept
    assert (after["order_count"], after["code_uses"], after["counted"]) == (1, 1, True)
    assert after["history"][-2:] == [
        ("accepted", "refunded", "stripe"),
        ("refunded", "accepted", "stripe"),
    ]


def test_a_cancelled_order_stays_cancelled_when_its_money_goes_back(restaurants, roster, order):
    ours = restaurants[0]
    with tenant_context(ours):
        order_transition(
            actor=Actor(member=roster[("ours", "manager")]),
            order_id=order.pk,
            to_status=Status.CANCELLED,
            reason="Kitchen fire",
        )
        order_mark_refunded(order_id=order.pk, actor=STRIPE)
        order_unmark_refunded(order_id=order.pk, actor=STRIPE)
    after = state(ours, order)
    assert after["status"] == "cancelled"
    assert (after["code_uses"], after["counted"]) == (0, False)
    assert after["history"][-1][1] == "cancelled"
