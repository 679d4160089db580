import io
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from menus.models import MenuVersion
from menus.storefront import live_menu
from orders.checkout_request import parse_checkout
from orders.placement import place_order
from promotions.models import Promotion
from staff.models import StaffMember
from tenants.context import tenant_bypass, tenant_context
from tenants.models import Restaurant

# The commands cross restaurants as the platform role, which sees what is committed.
pytestmark = pytest.mark.django_db(transaction=True)


def test_seed_demo_creates_two_restaurants_with_every_role_and_is_idempotent():
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    assert Restaurant.objects.count() == 2
    with tenant_bypass():
        for restaurant in Restaurant.objects.all():
            roles = set(
                StaffMember.unscoped.filter(restaurant=restaurant).values_list("role", flat=True)
            )
            assert roles == {"owner", "admin", "manager", "cashier", "kitchen"}
        assert StaffMember.unscoped.filter(clerk_user_id="user_demo_multi").count() == 2
        assert MenuVersion.unscoped.count() == 2, "one published menu each, not republished"
        assert Promotion.unscoped.filter(code="WELCOME10").count() == 2


def test_the_demo_storefront_takes_an_order():
    call_command("seed_demo", stdout=io.StringIO())
    restaurant = Restaurant.objects.get(slug="trattoria-nord")
    with tenant_context(restaurant):
        menu = live_menu(restaurant.pk)
        assert menu is not None
        fries = next(i for i in menu.document["items"].values() if i["name"] == "Fries")
        sunday_noon = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)  # 12:00 in Helsinki
        body = {"lines": [{"item_id": fries["id"], "quantity": 2}], "name": "A", "email": "a@b.fi"}
        order, _ = place_order(
            restaurant=restaurant,
            request=parse_checkout(body, restaurant.zone),
            idempotency_key=None,
            now=sunday_noon,
        )
    assert (order.subtotal, order.total, order.tax) == (900, 900, 111)  # 14 % included


@pytest.mark.parametrize("role", ["owner", "kitchen"])
def test_dev_token_prints_a_token_the_api_accepts(role):
    call_command("seed_demo", stdout=io.StringIO())
    out = io.StringIO()
    call_command("dev_token", restaurant="kestrel-noodles", role=role, stdout=out)
    token = out.getvalue().strip()
    me = Client().get(reverse("api-me"), HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert (me["restaurant"]["slug"], me["role"]) == ("kestrel-noodles", role)


def test_dev_token_by_user():
    call_command("seed_demo", stdout=io.StringIO())
    out = io.StringIO()
    call_command("dev_token", user="user_demo_multi", stdout=out)
    me = Client().get(reverse("api-me"), HTTP_AUTHORIZATION=f"Bearer {out.getvalue().strip()}")
    assert len(me.json()["memberships"]) == 2


def test_dev_token_explains_what_is_missing():
    with pytest.raises(CommandError, match="--restaurant and --role"):
        call_command("dev_token")
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("dev_token", restaurant="nowhere", role="owner")
