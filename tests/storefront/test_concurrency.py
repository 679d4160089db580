"""A checkout sent several times at once (a double click, a retrying browser) places one
order, on real PostgreSQL with real concurrent transactions."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import Client

from menus.models import ModifierGroup
from orders.models import Order
from storefront import cart as carts
from tenants.context import tenant_context
from tests.factories import make_shop, open_all_week, run_concurrently
from tests.storefront.test_pages import HOST, NOW, add, checkout_data, url


@pytest.mark.django_db(transaction=True)
def test_simultaneous_submits_of_one_checkout_place_one_order(restaurants):
    ours = restaurants[0]
    open_all_week(ours)
    ids = make_shop(ours)
    with tenant_context(ours):
        ids["size"] = ModifierGroup.objects.get(name="Size").pk
        ids["extras"] = ModifierGroup.objects.get(name="Extras").pk
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        diner = Client(HTTP_HOST=HOST)
        add(diner, ids)
        data = checkout_data(diner)
        cookie = diner.cookies[carts.COOKIE_NAME].value

        def submit():
            client = Client(HTTP_HOST=HOST)
            client.cookies[carts.COOKIE_NAME] = cookie
            response = client.post(url("checkout"), data)
            return response.status_code, response["Location"]

        results = run_concurrently(*[submit] * 4)
    with tenant_context(ours):
        (order,) = Order.objects.all()
    assert results == [(303, url("order", order.public_id))] * 4
