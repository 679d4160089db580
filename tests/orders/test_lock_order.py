"""Checkout and cancellation take the customer's and the promotion's rows in one order, so a
diner re-ordering with a code while staff cancel their earlier order with it never deadlocks."""

import threading
from datetime import UTC, datetime

import pytest
from django.utils import timezone

import orders.placement as placement_module
import orders.services as services_module
from orders.checkout_request import parse_checkout
from orders.models import Order, Status
from orders.placement import place_order
from orders.services import order_cancel
from promotions.models import Promotion
from staff.auth import Actor
from staff.models import StaffMember
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import make_shop, make_staff, open_all_week, run_concurrently

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def body(ids, **fields):
    return {
        "lines": [{"item_id": ids["burger"], "quantity": 1, "modifier_ids": [ids["regular"]]}],
        "name": "Ada",
        "email": "ada@example.com",
        "promotion_code": "SUMMER10",
        **fields,
    }


@pytest.mark.django_db(transaction=True)
def test_a_checkout_and_a_cancellation_of_the_same_diner_both_finish(restaurants, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    ours = restaurants[0]
    open_all_week(ours)
    ids = make_shop(ours)
    manager = make_staff(ours, "manager")
    with tenant_context(ours):
        Promotion.objects.create(code="SUMMER10", kind="percent", value=10)
        first, _ = place_order(
            restaurant=ours,
            request=parse_checkout(body(ids), ours.zone),
            idempotency_key="1",
            now=NOW,
        )

    # Force the interleaving: the checkout holds the customer's row when the cancellation
    # starts on its side; each then goes for what the other might hold.
    checkout_holds_customer = threading.Event()
    cancel_started = threading.Event()
    count_use = placement_module.promotion_count_use  # type: ignore[attr-defined]
    refresh = services_module.customer_refresh_stats  # type: ignore[attr-defined]

    def slow_count_use(**kwargs):
        checkout_holds_customer.set()
        cancel_started.wait(10)
        return count_use(**kwargs)

    def signalling_refresh(customer_id):
        cancel_started.set()
        return refresh(customer_id)

    monkeypatch.setattr(placement_module, "promotion_count_use", slow_count_use)
    monkeypatch.setattr(services_module, "customer_refresh_stats", signalling_refresh)

    def diner():
        restaurant = Restaurant.objects.get(pk=ours.pk)
        with tenant_context(restaurant):
            request = parse_checkout(body(ids, name="Ada B"), restaurant.zone)
            return place_order(restaurant=restaurant, request=request, idempotency_key="2")[0]

    def staff():
        checkout_holds_customer.wait(10)
        restaurant = Restaurant.objects.get(pk=ours.pk)
        with tenant_context(restaurant):
            member = StaffMember.objects.select_related("restaurant").get(pk=manager.pk)
            return order_cancel(actor=Actor(member=member), order_id=first.pk, reason="x")

    second, cancelled = run_concurrently(diner, staff)
    assert isinstance(second, Order), second
    assert isinstance(cancelled, Order), cancelled
    assert cancelled.status == Status.CANCELLED
    with tenant_context(ours):
        assert Promotion.objects.get().redemption_count == 1  # the second order's use
