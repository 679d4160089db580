"""The export endpoints: the list of types, the streamed response and its headers, filters
and their 400s, roles, the rate limit, the audit event, constant memory."""

import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import cast

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from customers.models import Customer
from exports import registry
from exports.copy import CHUNK_SIZE
from orders.models import Order
from tenants.context import tenant_context
from tests.exports.conftest import body_of, export, place, rows_of
from tests.factories import api_client, run_concurrently

ERROR_KEYS = {"type", "code", "detail", "attr"}


def owner_of(roster):
    return roster[("ours", "owner")]


def set_created(restaurant, order, moment):
    with tenant_context(restaurant):
        Order.objects.filter(pk=order.pk).update(created_at=moment)


def export_events(restaurant):
    with tenant_context(restaurant):
        return list(AuditEvent.objects.filter(action="export.created").order_by("sequence"))


@pytest.mark.django_db
class TestList:
    def test_lists_every_type_with_columns_and_filters(self, roster):
        response = api_client(owner_of(roster)).get(reverse("api-exports"))
        assert response.status_code == 200
        results = {entry["name"]: entry for entry in response.json()["results"]}
        assert list(results) == [
            "orders", "order_lines", "customers", "menus", "promotions", "redemptions",
        ]  # fmt: skip
        orders = results["orders"]
        assert orders["url"] == "/api/v1/exports/orders.csv"
        assert orders["filters"] == ["date_from", "date_to", "status"]
        assert [c["name"] for c in orders["columns"]] == registry.get("orders").column_names
        assert results["customers"]["filters"] == ["date_from", "date_to"]
        assert results["menus"]["filters"] == []


@pytest.mark.django_db
class TestResponse:
    def test_headers(self, shops, roster):
        response = export(owner_of(roster), "order_lines")
        assert isinstance(response, StreamingHttpResponse)
        assert response.status_code == 200
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        today = timezone.localtime(timezone.now(), owner_of(roster).restaurant.zone).date()
        assert response["Content-Disposition"] == (
            f'attachment; filename="ours-order-lines-{today.isoformat()}.csv"'
        )
        assert response["Cache-Control"] == "no-store"
        body_of(response)

    def test_accept_text_csv_is_fine(self, roster):
        response = api_client(owner_of(roster)).get(
            reverse("api-export-csv", kwargs={"export_type": "customers"}),
            HTTP_ACCEPT="text/csv",
        )
        assert response.status_code == 200
        assert body_of(response).startswith(b"id,email,")

    def test_errors_are_json_even_when_csv_is_asked_for(self, roster):
        response = api_client(owner_of(roster)).get(
            reverse("api-export-csv", kwargs={"export_type": "orders"}),
            {"date_from": "soon"},
            HTTP_ACCEPT="text/csv",
        )
        assert response.status_code == 400
        assert response.json()["attr"] == "date_from"

    def test_unknown_type_is_404(self, roster):
        response = export(owner_of(roster), "payroll")
        assert response.status_code == 404
        assert response.json()["code"] == "unknown_export"
        assert not export_events(owner_of(roster).restaurant)

    def test_an_empty_export_is_its_header(self, roster):
        response = export(owner_of(roster), "redemptions")
        assert body_of(response) == (
            b"id,created_at,promotion_id,code,order_id,order_number,order_status,order_total,"
            b"customer_id,customer_email,discount,currency,counted\n"
        )


@pytest.mark.django_db
class TestFilters:
    def test_dates_are_the_restaurants_days(self, shops, roster, restaurants):
        """Helsinki's 1 July starts at 21:00 UTC on 30 June."""
        ours = restaurants[0]
        late_june = place(ours, shops["ours"])
        first_of_july = place(ours, shops["ours"])
        second_of_july = place(ours, shops["ours"])
        set_created(ours, late_june, datetime(2026, 6, 30, 20, 59, 59, tzinfo=UTC))
        set_created(ours, first_of_july, datetime(2026, 6, 30, 21, 0, tzinfo=UTC))
        set_created(ours, second_of_july, datetime(2026, 7, 1, 21, 0, tzinfo=UTC))
        owner = owner_of(roster)

        def ids(export_type="orders", key="id", **params):
            return [int(row[key]) for row in rows_of(export(owner, export_type, **params))]

        assert ids(date_from="2026-07-01") == [first_of_july.pk, second_of_july.pk]
        assert ids(date_to="2026-06-30") == [late_june.pk]
        assert ids(date_from="2026-07-01", date_to="2026-07-01") == [first_of_july.pk]
        assert set(ids("order_lines", "order_id", date_from="2026-07-02")) == {second_of_july.pk}
        assert ids() == [late_june.pk, first_of_july.pk, second_of_july.pk]

    def test_status(self, shops, roster, restaurants):
        ours = restaurants[0]
        placed, done, gone = (place(ours, shops["ours"]) for _ in range(3))
        with tenant_context(ours):
            Order.objects.filter(pk=done.pk).update(status="completed")
            Order.objects.filter(pk=gone.pk).update(status="cancelled")
        owner = owner_of(roster)

        def ids(export_type="orders", key="id", **params):
            return {int(row[key]) for row in rows_of(export(owner, export_type, **params))}

        assert ids(status="completed") == {done.pk}
        assert ids(status="completed,cancelled") == {done.pk, gone.pk}
        response = api_client(owner).get(
            reverse("api-export-csv", kwargs={"export_type": "orders"}),
            {"status": ["placed", "cancelled"]},
        )
        assert {int(row["id"]) for row in rows_of(response)} == {placed.pk, gone.pk}
        assert ids("order_lines", "order_id", status="placed") == {placed.pk}

    def test_customers_by_creation_date(self, roster, restaurants):
        ours = restaurants[0]
        with tenant_context(ours):
            old = Customer.objects.create(email="old@example.com", name="Old")
            new = Customer.objects.create(email="new@example.com", name="New")
            Customer.objects.filter(pk=old.pk).update(
                created_at=datetime(2025, 1, 1, 12, tzinfo=UTC)
            )
        rows = rows_of(export(owner_of(roster), "customers", date_from="2026-01-01"))
        assert [int(row["id"]) for row in rows] == [new.pk]

    @pytest.mark.parametrize(
        ("export_type", "params", "attr", "code"),
        [
            ("orders", {"date_from": "yesterday"}, "date_from", "invalid"),
            ("orders", {"date_to": "2026-02-30"}, "date_to", "invalid"),
            ("orders", {"date_from": "1999-12-31"}, "date_from", "invalid"),
            ("orders", {"date_from": "2026-05-02", "date_to": "2026-05-01"}, "date_to", "invalid"),
            ("orders", {"date_from": "2026-05-01,2026-05-02"}, "date_from", "invalid"),
            ("orders", {"status": "eaten"}, "status", "invalid"),
            ("orders", {"status": ",".join(["placed"] * 21)}, "status", "invalid"),
            ("customers", {"status": "placed"}, "status", "invalid"),
            ("menus", {"date_from": "2026-05-01"}, "date_from", "invalid"),
            ("orders", {"bom": "yes please"}, "bom", "invalid"),
            ("orders", {"restaurant_id": "2"}, "restaurant_id", "unknown_parameter"),
            ("orders", {"format": "json"}, "format", "unknown_parameter"),
        ],
    )
    def test_bad_filters_are_400_and_export_nothing(self, roster, export_type, params, attr, code):
        owner = owner_of(roster)
        response = export(owner, export_type, **params)
        assert response.status_code == 400, response
        body = response.json()
        assert set(body) == ERROR_KEYS | {"errors"}
        assert body["type"] == "validation_error"
        assert (body["attr"], body["code"]) == (attr, code)
        assert not export_events(owner.restaurant), "nothing is audited"


@pytest.mark.django_db
class TestAccess:
    @pytest.mark.parametrize("role", ["manager", "cashier", "kitchen"])
    @pytest.mark.parametrize("route", ["api-exports", "api-export-csv"])
    def test_roles_without_the_scope_get_403(self, roster, role, route):
        kwargs = {"export_type": "customers"} if route == "api-export-csv" else None
        response = api_client(roster[("ours", role)]).get(reverse(route, kwargs=kwargs))
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"

    @pytest.mark.parametrize("role", ["owner", "admin"])
    def test_owner_and_admin_may_export(self, roster, role):
        response = export(roster[("ours", role)], "customers")
        assert response.status_code == 200
        body_of(response)

    def test_anonymous_is_401(self):
        response = api_client(None).get(
            reverse("api-export-csv", kwargs={"export_type": "customers"})
        )
        assert response.status_code == 401


@pytest.mark.django_db
class TestRateLimit:
    def test_per_restaurant_and_staff_member(self, roster, settings, frozen_ratelimit_clock):
        settings.EXPORT_RATE = "2/h"
        owner, admin = owner_of(roster), roster[("ours", "admin")]
        for _ in range(2):
            body_of(export(owner, "customers"))
        refused = export(owner, "orders")
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert int(refused["Retry-After"]) > 0
        # Someone else, here or in another restaurant, has their own budget.
        body_of(export(admin, "customers"))
        body_of(export(roster[("theirs", "owner")], "customers"))
        assert len(export_events(owner.restaurant)) == 3, "a refused export is not audited"

    def test_bad_requests_do_not_use_the_budget(self, roster, settings, frozen_ratelimit_clock):
        settings.EXPORT_RATE = "1/h"
        owner = owner_of(roster)
        for _ in range(3):
            assert export(owner, "orders", status="eaten").status_code == 400
        body_of(export(owner, "orders"))
        assert export(owner, "orders").status_code == 429


@pytest.mark.django_db
class TestAudit:
    def test_each_export_is_audited_with_its_type_and_filters(self, roster):
        owner = owner_of(roster)
        body_of(export(owner, "orders", date_from="2026-05-01", status="placed,ready", bom="1"))
        [event] = export_events(owner.restaurant)
        assert event.actor_id == owner.pk
        assert event.actor_role == "owner"
        assert event.target_type == "export"
        assert event.target_id == "orders"
        assert event.changes == {
            "export_type": {"before": None, "after": "orders"},
            "filters": {
                "before": None,
                "after": {"date_from": "2026-05-01", "status": ["placed", "ready"]},
            },
            "bom": {"before": None, "after": True},
        }

    def test_an_export_refused_for_the_role_is_not_audited(self, roster):
        assert export(roster[("ours", "manager")], "orders").status_code == 403
        assert not export_events(roster[("ours", "owner")].restaurant)


@pytest.mark.django_db(transaction=True)
def test_the_audit_event_is_committed_before_the_body_streams(roster):
    """The request's transaction (with the audit row) ends when the view returns; the body
    is read afterwards in a transaction of its own, under the restaurant's context."""
    owner = owner_of(roster)
    with tenant_context(owner.restaurant):
        Customer.objects.create(email="ada@example.com", name="Ada")
    response = export(owner, "customers")
    assert response.status_code == 200
    assert not connection.in_atomic_block

    def committed_events():
        return len(export_events(owner.restaurant))

    # Another connection sees the audit row before a byte of the body has been read.
    assert run_concurrently(committed_events) == [1]
    rows = rows_of(response)
    assert [row["email"] for row in rows] == ["ada@example.com"]
    assert not connection.in_atomic_block, "the body's transaction ended with the body"


@pytest.mark.django_db(transaction=True)
def test_closing_the_response_early_ends_the_copy(roster):
    """A client that goes away mid-download: the COPY is cancelled, the connection is clean."""
    owner = owner_of(roster)
    with tenant_context(owner.restaurant):
        Customer.objects.bulk_create(
            Customer(email=f"d{n}@example.com", name="x" * 100) for n in range(3000)
        )
    response = export(owner, "customers")
    chunks = iter(response.streaming_content)
    assert len(next(chunks)) >= CHUNK_SIZE
    assert connection.in_atomic_block, "the export's transaction is open while it streams"
    response.close()
    assert not connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    body_of(export(owner, "customers"))


@pytest.mark.django_db
def test_memory_stays_flat_while_rows_stream(roster, restaurants):
    """20,000 orders stream in 64 KiB chunks; Python never holds more than a few of them."""
    ours = restaurants[0]
    now = timezone.now()
    with tenant_context(ours):
        customer = Customer.objects.create(email="many@example.com", name="Many")
        Order.objects.bulk_create(
            Order(
                number=n, status="completed", fulfilment="pickup", payment_method="in_person",
                customer=customer, contact_name=f"Diner number {n}",
                contact_email="many@example.com", contact_phone="040 1", promised_at=now,
                slot_start=now, currency="EUR", subtotal=1000 + n, tax_rate=0,
                prices_include_tax=True, total=1000 + n, menu_version=1,
                idempotency_key=uuid.uuid4().hex, request_fingerprint="0" * 64, placed_at=now,
            )
            for n in range(1, 20_001)
        )  # fmt: skip
    response = export(owner_of(roster), "orders")
    assert isinstance(response, StreamingHttpResponse)
    sizes = []
    lines = 0
    tracemalloc.start()
    try:
        for chunk in cast(Iterator[bytes], response.streaming_content):
            sizes.append(len(chunk))
            lines += chunk.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    total = sum(sizes)
    assert lines == 20_001  # the header and every order
    assert total > 4_000_000
    assert all(CHUNK_SIZE <= size < CHUNK_SIZE + 4096 for size in sizes[:-1])
    assert peak < 1_000_000, f"peak {peak} bytes for a {total}-byte export"


@pytest.mark.django_db
def test_head_is_not_an_export(roster):
    response = api_client(owner_of(roster)).head(
        reverse("api-export-csv", kwargs={"export_type": "customers"})
    )
    assert response.status_code == 405
    assert not export_events(owner_of(roster).restaurant)


@pytest.mark.django_db
def test_a_restaurant_pending_deletion_can_still_take_its_data(roster, restaurants):
    ours = restaurants[0]
    with tenant_context(ours):
        Customer.objects.create(email="ada@example.com", name="Ada")
    type(ours).objects.filter(pk=ours.pk).update(status="pending_deletion")
    rows = rows_of(export(owner_of(roster), "customers"))
    assert [row["email"] for row in rows] == ["ada@example.com"]
