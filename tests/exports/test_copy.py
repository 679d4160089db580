"""The functions background exports build on: streaming outside a request, progress, row
counts, file names, the filters' round trip, and a type registered by another app."""

import csv
import io
from datetime import date

import pytest

from customers.models import Customer
from exports import registry
from exports.cells import money, text, timestamp
from exports.copy import count_rows, file_name, stream_csv
from exports.registry import Column, DuplicateExport, ExportFilters, ExportType
from nordkestrel.errors import InvalidInput
from tenants.context import tenant_context
from tests.exports.conftest import BOM, body_of, export, place

pytestmark = pytest.mark.django_db


def customers(restaurant, count):
    with tenant_context(restaurant):
        Customer.objects.bulk_create(
            Customer(email=f"diner{n}@example.com", name=f"Diner {n}") for n in range(count)
        )


def test_streams_outside_a_request_in_chunks_with_progress(restaurants):
    ours, theirs = restaurants
    customers(ours, 300)
    customers(theirs, 500)
    progress: list[int] = []
    chunks = list(
        stream_csv(
            restaurant=ours, export_type=registry.get("customers"), filters=ExportFilters(),
            bom=True, chunk_size=4096, progress=progress.append,
        )
    )  # fmt: skip
    body = b"".join(chunks)
    assert body.startswith(BOM)
    assert all(len(chunk) >= 4096 for chunk in chunks[:-1])
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert len(rows) == 300
    assert progress == sorted(progress)
    assert len(progress) == len(chunks)
    assert progress[-1] == 300


def test_count_rows_follows_the_filters(shops, restaurants):
    ours, theirs = restaurants
    for _ in range(2):
        place(ours, shops["ours"])
    for _ in range(3):
        place(theirs, shops["theirs"])
    orders = registry.get("orders")
    assert count_rows(restaurant=ours, export_type=orders, filters=ExportFilters()) == 2
    assert count_rows(restaurant=theirs, export_type=orders, filters=ExportFilters()) == 3
    cancelled = ExportFilters(statuses=("cancelled",))
    assert count_rows(restaurant=ours, export_type=orders, filters=cancelled) == 0
    lines = registry.get("order_lines")
    assert count_rows(restaurant=ours, export_type=lines, filters=ExportFilters()) == 4


def test_file_name(restaurants):
    assert file_name(restaurants[0], registry.get("order_lines"), on=date(2026, 5, 1)) == (
        "ours-order-lines-2026-05-01.csv"
    )


def test_filters_round_trip():
    orders = registry.get("orders")
    filters = registry.parse_filters(
        orders, {"date_from": "2026-05-01", "date_to": "2026-05-31", "status": "placed,ready"}
    )
    assert filters == ExportFilters(
        date_from=date(2026, 5, 1), date_to=date(2026, 5, 31), statuses=("placed", "ready")
    )
    assert filters.as_dict() == {
        "date_from": "2026-05-01", "date_to": "2026-05-31", "status": ["placed", "ready"],
    }  # fmt: skip
    assert ExportFilters.from_dict(filters.as_dict()) == filters
    assert ExportFilters().as_dict() == {}
    with pytest.raises(InvalidInput) as refused:
        registry.parse_filters(registry.get("promotions"), {"status": "placed"})
    assert refused.value.attr == "status"


@pytest.fixture
def spenders_export():
    """Another app's export type, registered the way campaigns will add theirs."""
    spenders = registry.register(
        ExportType(
            name="big_spenders",
            label="Big spenders",
            description="Customers who spent the most.",
            columns=(
                Column("name", text("c.name")),
                Column("spent", money("c.total_spent")),
                Column("since", timestamp("c.created_at")),
            ),
            source="FROM customers_customer c",
            tenant_column="c.restaurant_id",
            order_by="c.total_spent DESC",
            date_column="c.created_at",
        )
    )
    yield spenders
    registry._TYPES.pop(spenders.name)


def test_other_apps_add_export_types(spenders_export, roster, restaurants):
    ours, theirs = restaurants
    with tenant_context(ours):
        Customer.objects.create(email="a@example.com", name="=Ann", total_spent=9900)
        Customer.objects.create(email="b@example.com", name="Bo", total_spent=100)
    with tenant_context(theirs):
        Customer.objects.create(email="c@example.com", name="Theirs", total_spent=99999)
    body = body_of(export(roster[("ours", "admin")], "big_spenders")).decode()
    rows = list(csv.reader(io.StringIO(body, newline="")))
    assert [row[:2] for row in rows] == [["name", "spent"], ["'=Ann", "99.00"], ["Bo", "1.00"]]
    assert rows[1][2].startswith("20")
    with pytest.raises(DuplicateExport):
        registry.register(spenders_export)
