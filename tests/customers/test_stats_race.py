"""A customer's stats stay right when a recount meets a checkout of the same diner.

Checkout adds its order to the stats in the customer upsert, which holds the row until the
order commits; a recount (a card payment, a cancellation, a refund) that arrives meanwhile
must wait and then count that order too, or the stats stay one short until the next recount.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from customers.models import Customer
from orders.checkout_request import parse_checkout
from orders.customer_stats import customer_refresh_stats
from orders.placement import place_order
from tenants.context import tenant_context
from tests.factories import make_shop, open_all_week, run_concurrently

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday, open 08:00-22:00


@pytest.mark.django_db(transaction=True)
def test_a_recount_waiting_on_a_checkout_counts_its_order(restaurants):
    ours = restaurants[0]
    open_all_week(ours)
    ids = make_shop(ours)
    data = {
        "lines": [{"item_id": ids["fries"], "quantity": 1}],
        "name": "Ada Lovelace",
        "email": "ada@example.com",
    }
    request = parse_checkout(data, ours.zone)
    first, _ = place_order(restaurant=ours, request=request, idempotency_key="first", now=NOW)
    holding, release = threading.Event(), threading.Event()

    def checkout() -> None:
        with tenant_context(ours):
            place_order(restaurant=ours, request=request, idempotency_key="second", now=NOW)
            holding.set()  # the customer row is locked until this transaction commits
            assert release.wait(timeout=20)

    def recount() -> None:
        assert holding.wait(timeout=20)
        with tenant_context(ours):
            customer_refresh_stats(first.customer_id)

    def let_go() -> None:
        assert holding.wait(timeout=20)
        time.sleep(0.5)  # the recount is waiting on the row by now
        release.set()

    results = run_concurrently(checkout, recount, let_go)
    assert results == [None, None, None], results
    with tenant_context(ours):
        customer = Customer.objects.get(pk=first.customer_id)
    assert (customer.order_count, customer.total_spent) == (2, 2 * first.total)
