"""The tenant boundary on the COPY path: another restaurant's rows never appear in an export,
through the endpoint, and each wall alone (the explicit filter, row-level security) holds."""

import pytest

from customers.models import Customer
from exports import registry
from exports.copy import copy_statement
from exports.registry import ExportFilters
from menus import services as menus
from menus.models import Item, Menu
from nordkestrel.dbrouting import current_connection
from orders.models import Order, OrderLine
from promotions.models import Promotion
from staff.auth import Actor
from tenants.context import tenant_bypass, tenant_context
from tests.exports.conftest import body_of, export, place, rows_of

pytestmark = pytest.mark.django_db

TYPES = ["orders", "order_lines", "customers", "menus", "promotions", "redemptions"]


@pytest.fixture
def both(shops, roster, restaurants):
    """Ours has one of everything; theirs has more of everything, each marked 'Theirs'."""
    ours, theirs = restaurants
    for restaurant, count in ((ours, 1), (theirs, 3)):
        label = restaurant.slug.title()
        with tenant_context(restaurant):
            Promotion.objects.create(code=f"{label}10", kind="percent", value=10)
        for n in range(count):
            place(
                restaurant, shops[restaurant.slug], name=f"{label} Diner {n}",
                email=f"diner{n}@{restaurant.slug}.example.com", promotion_code=f"{label}10",
            )  # fmt: skip
    with tenant_context(theirs):
        Menu.objects.update(name="Theirs menu")
        for item in Item.objects.all():
            Item.objects.filter(pk=item.pk).update(name=f"Theirs {item.name}")
        menus.publish(actor=Actor(member=roster[("theirs", "owner")]))
        Item.objects.create(name="Theirs draft-only item", price=100)
    return ours, theirs


def own_ids(restaurant):
    with tenant_context(restaurant):
        return {
            "orders": set(Order.objects.values_list("pk", flat=True)),
            "lines": set(OrderLine.objects.values_list("order_id", flat=True)),
            "customers": set(Customer.objects.values_list("pk", flat=True)),
            "items": set(Item.objects.values_list("pk", flat=True)),
            "promotions": set(Promotion.objects.values_list("pk", flat=True)),
        }


@pytest.mark.parametrize("export_type", TYPES)
def test_an_export_holds_only_the_restaurants_own_rows(both, roster, export_type):
    ours = both[0]
    response = export(roster[("ours", "owner")], export_type)
    assert b"heirs" not in body_of(export(roster[("ours", "owner")], export_type)).lower()
    rows = rows_of(response)
    assert rows, "there is something to export"
    mine = own_ids(ours)
    for row in rows:
        if export_type == "orders":
            assert int(row["id"]) in mine["orders"]
        if export_type in ("order_lines", "redemptions"):
            assert int(row["order_id"]) in mine["orders"]
        if export_type in ("orders", "redemptions"):
            assert int(row["customer_id"]) in mine["customers"]
        if export_type == "customers":
            assert int(row["id"]) in mine["customers"]
        if export_type == "menus":
            assert int(row["item_id"]) in mine["items"]
        if export_type == "promotions":
            assert int(row["id"]) in mine["promotions"]
    # ...and theirs, which has more of everything, sees only its own.
    their_body = body_of(export(roster[("theirs", "owner")], export_type)).decode()
    assert "ours" not in their_body.lower()
    assert len(rows_of(export(roster[("theirs", "owner")], export_type))) >= len(rows)


def data_rows(restaurant_for_query, export_type):
    """Run the export's COPY as built for ``restaurant_for_query`` on the connection of the
    block (the platform role's inside ``tenant_bypass()``), whatever tenant setting is in
    force; return its data rows."""
    statement, params = copy_statement(
        restaurant_for_query, registry.get(export_type), ExportFilters()
    )
    with current_connection().cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
        lines = [bytes(chunk) for chunk in copy]
    return lines[1:]


@pytest.mark.django_db(transaction=True)  # the platform role sees what is committed
@pytest.mark.parametrize("export_type", TYPES)
def test_the_explicit_filter_alone_keeps_other_restaurants_out(both, export_type):
    """With row-level security opened (the platform bypass), the query's own
    ``restaurant_id`` conditions still return exactly what the restaurant's context does."""
    ours, _ = both
    with tenant_context(ours):
        expected = data_rows(ours, export_type)
    with tenant_bypass():
        assert data_rows(ours, export_type) == expected
        assert expected


@pytest.mark.django_db(transaction=True)  # the platform role sees what is committed
@pytest.mark.parametrize("export_type", TYPES)
def test_row_level_security_alone_keeps_other_restaurants_out(both, export_type):
    """A query built for the other restaurant, run in our context: RLS leaves nothing (the
    public-read storefront menu state alone cannot bring the other's menu in)."""
    ours, theirs = both
    with tenant_bypass():
        assert data_rows(theirs, export_type), "their rows exist"
    with tenant_context(ours):
        assert data_rows(theirs, export_type) == []
