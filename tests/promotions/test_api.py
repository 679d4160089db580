"""/api/v1/promotions: managing codes and reading their redemptions over the API."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from orders.services import order_cancel
from promotions.models import Promotion
from staff.auth import Actor
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import api_client

pytestmark = pytest.mark.django_db

VALID = {"code": "SPRING10", "kind": "percent", "value": 10}


def post(client, body):
    return client.post(reverse("api-promotions"), json.dumps(body), content_type="application/json")


def patch(client, pk, body):
    return client.patch(
        reverse("api-promotion-detail", args=[pk]),
        json.dumps(body),
        content_type="application/json",
    )


def stored(restaurant) -> list[Promotion]:
    with tenant_context(restaurant):
        return list(Promotion.objects.order_by("id"))


@pytest.fixture
def manager(roster):
    return api_client(roster[("ours", "manager")])


class TestCreateAndRead:
    def test_create_answers_the_code_as_stored(self, manager, restaurants):
        response = post(
            manager,
            {
                **VALID, "kind": "fixed", "value": 500, "description": "Spring",
                "min_subtotal": 2000, "starts_at": "2026-06-01T09:00:00+03:00",
                "ends_at": "2026-07-01T00:00:00Z", "max_redemptions": 100,
                "per_customer_limit": 1, "first_order_only": True, "active": True,
            },
        )  # fmt: skip
        assert response.status_code == 201, response.content
        body = response.json()
        [promotion] = stored(restaurants[0])
        assert body["id"] == promotion.pk
        assert body["code"] == "SPRING10"
        assert (body["kind"], body["value"], body["min_subtotal"]) == ("fixed", 500, 2000)
        assert body["currency"] == "EUR"
        assert body["starts_at"] == "2026-06-01T06:00:00Z"
        assert body["ends_at"] == "2026-07-01T00:00:00Z"
        assert (body["max_redemptions"], body["per_customer_limit"]) == (100, 1)
        assert body["first_order_only"] is True
        assert body["redemption_count"] == 0
        assert body["status"] in {"active", "expired", "scheduled"}  # depends on today
        assert promotion.starts_at == datetime(2026, 6, 1, 6, 0, tzinfo=UTC)

    def test_a_time_without_an_offset_is_the_restaurants_local_time(self, manager, restaurants):
        Restaurant.objects.filter(pk=restaurants[0].pk).update(timezone="Europe/Helsinki")
        response = post(manager, {**VALID, "starts_at": "2026-01-15T09:00"})
        assert response.status_code == 201, response.content
        assert response.json()["starts_at"] == "2026-01-15T07:00:00Z"  # EET, UTC+2 in winter

    def test_a_local_time_the_clocks_skip_is_refused(self, manager, restaurants):
        Restaurant.objects.filter(pk=restaurants[0].pk).update(timezone="Europe/Helsinki")
        response = post(manager, {**VALID, "starts_at": "2026-03-29T03:30"})
        assert response.status_code == 400
        assert response.json()["attr"] == "starts_at"
        assert stored(restaurants[0]) == []

    def test_the_list_is_newest_first_with_status_and_uses(self, manager, create, redeem):
        first = create(code="FIRST", max_redemptions=1)
        create(code="PAUSED", active=False)
        create(code="LATER", starts_at=datetime(2999, 1, 1, tzinfo=UTC))
        create(code="OVER", ends_at=datetime(2001, 1, 1, tzinfo=UTC))
        redeem("first")
        response = manager.get(reverse("api-promotions"))
        assert response.status_code == 200
        rows = response.json()["results"]
        assert [(r["code"], r["status"]) for r in rows] == [
            ("OVER", "expired"),
            ("LATER", "scheduled"),
            ("PAUSED", "inactive"),
            ("FIRST", "used_up"),
        ]
        assert rows[-1]["redemption_count"] == 1
        detail = manager.get(reverse("api-promotion-detail", args=[first.pk])).json()
        assert (detail["code"], detail["status"], detail["redemption_count"]) == (
            "FIRST",
            "used_up",
            1,
        )

    def test_another_restaurants_codes_are_never_listed_and_their_ids_are_404(
        self, manager, roster, restaurants
    ):
        theirs = api_client(roster[("theirs", "owner")])
        foreign = post(theirs, {**VALID, "code": "THEIRS-ONLY"}).json()
        assert post(manager, VALID).status_code == 201
        listed = manager.get(reverse("api-promotions")).content.decode()
        assert "THEIRS-ONLY" not in listed
        for response in (
            manager.get(reverse("api-promotion-detail", args=[foreign["id"]])),
            patch(manager, foreign["id"], {"value": 50}),
            manager.get(reverse("api-promotion-redemptions", args=[foreign["id"]])),
        ):
            assert response.status_code == 404
            assert "THEIRS-ONLY" not in response.content.decode()
        assert stored(restaurants[1])[0].value == 10


class TestValidation:
    @pytest.mark.parametrize(
        ("change", "attr"),
        [
            ({"code": "no"}, "code"),
            ({"code": "TEN OFF"}, "code"),
            ({"code": ""}, "code"),
            ({"code": None}, "code"),
            ({"code": "x" * 5000}, "code"),
            ({"code": "TEN\u0000"}, "code"),
            ({"kind": "bogof"}, "kind"),
            ({"value": 101}, "value"),
            ({"value": 0}, "value"),
            ({"value": "ten"}, "value"),
            ({"value": 10.5}, "value"),
            ({"value": 10**30}, "value"),
            ({"kind": "fixed", "value": 0}, "value"),
            ({"min_subtotal": -5}, "min_subtotal"),
            ({"starts_at": "yesterday"}, "starts_at"),
            ({"starts_at": "0001-01-01T00:00:00+14:00"}, "starts_at"),
            ({"starts_at": 12}, "starts_at"),
            ({"starts_at": "2026-06-02T00:00Z", "ends_at": "2026-06-01T00:00Z"}, "ends_at"),
            ({"max_redemptions": 0}, "max_redemptions"),
            ({"per_customer_limit": -1}, "per_customer_limit"),
            ({"first_order_only": "maybe"}, "first_order_only"),
            ({"description": "x" * 201}, "description"),
            ({"description": "\ud800"}, "description"),
        ],
    )
    def test_bad_fields_are_a_400_naming_the_field(self, manager, restaurants, change, attr):
        response = post(manager, {**VALID, **change})
        assert response.status_code == 400, response.content
        body = response.json()
        assert (body["type"], body["attr"]) == ("validation_error", attr)
        assert body["detail"]
        assert stored(restaurants[0]) == []

    @pytest.mark.parametrize("missing", ["code", "kind", "value"])
    def test_required_fields(self, manager, missing):
        body = dict(VALID)
        del body[missing]
        response = post(manager, body)
        assert response.status_code == 400
        assert response.json()["attr"] == missing

    @pytest.mark.parametrize(
        "field", ["redemption_count", "restaurant", "restaurant_id", "id", "status", "created_at"]
    )
    def test_fields_outside_the_allow_list_are_refused(self, manager, create, restaurants, field):
        response = post(manager, {**VALID, field: 1})
        assert response.status_code == 400
        assert response.json()["attr"] == field
        assert stored(restaurants[0]) == []
        promotion = create(code="KEEP")
        response = patch(manager, promotion.pk, {"value": 20, field: 99})
        assert response.status_code == 400
        assert response.json()["attr"] == field
        [kept] = stored(restaurants[0])
        assert (kept.value, kept.redemption_count, kept.restaurant_id) == (
            10,
            0,
            restaurants[0].pk,
        )

    def test_a_body_that_is_not_an_object_is_a_400(self, manager):
        response = manager.post(
            reverse("api-promotions"), json.dumps([VALID]), content_type="application/json"
        )
        assert response.status_code == 400

    def test_a_duplicate_code_in_another_case_is_a_409(self, manager, restaurants):
        assert post(manager, VALID).status_code == 201
        response = post(manager, {**VALID, "code": "spring10"})
        assert response.status_code == 409
        assert (response.json()["code"], response.json()["attr"]) == ("code_taken", "code")
        assert len(stored(restaurants[0])) == 1


class TestUpdate:
    def test_patch_changes_only_what_it_names_and_is_audited(self, manager, create, restaurants):
        promotion = create(code="SPRING10", max_redemptions=10)
        response = patch(manager, promotion.pk, {"description": "Spring", "ends_at": None})
        assert response.status_code == 200, response.content
        assert response.json()["description"] == "Spring"
        assert response.json()["max_redemptions"] == 10
        with tenant_context(restaurants[0]):
            [event] = AuditEvent.objects.filter(action="promotion.updated")
        assert event.changes == {"description": {"before": "", "after": "Spring"}}

    def test_deactivating_retires_a_code(self, manager, create):
        promotion = create()
        response = patch(manager, promotion.pk, {"active": False})
        assert (response.status_code, response.json()["status"]) == (200, "inactive")

    def test_the_code_of_a_redeemed_promotion_cannot_change(self, manager, create, redeem):
        promotion = create(code="SPRING10")
        redeem("SPRING10")
        response = patch(manager, promotion.pk, {"code": "SPRING20"})
        assert response.status_code == 409
        assert (response.json()["code"], response.json()["attr"]) == ("code_in_use", "code")

    def test_the_total_limit_cannot_go_below_the_uses(self, manager, create, redeem):
        promotion = create(code="SPRING10")
        redeem("SPRING10")
        response = patch(manager, promotion.pk, {"max_redemptions": 0})
        assert (response.status_code, response.json()["attr"]) == (400, "max_redemptions")
        assert patch(manager, promotion.pk, {"max_redemptions": 1}).json()["status"] == "used_up"

    def test_delete_is_not_offered(self, manager, create):
        promotion = create()
        response = manager.delete(reverse("api-promotion-detail", args=[promotion.pk]))
        assert response.status_code == 405


class TestRedemptions:
    def test_each_use_with_its_order_and_customer(self, manager, create, redeem, roster):
        promotion = create(code="SPRING10")
        other = create(code="OTHER")
        first = redeem("spring10", email="ada@example.com")
        second = redeem("SPRING10", email="grace@example.com")
        redeem("OTHER", email="alan@example.com")
        response = manager.get(reverse("api-promotion-redemptions", args=[promotion.pk]))
        assert response.status_code == 200
        rows = response.json()["results"]
        assert [(r["order_number"], r["customer_email"]) for r in rows] == [
            (second.number, "grace@example.com"),
            (first.number, "ada@example.com"),
        ]
        assert rows[0]["discount"] == 240  # 10 % of two 12.00 burgers
        assert rows[0]["counted"] is True
        assert rows[0]["order"] == second.pk
        assert rows[0]["created_at"].endswith("Z")
        assert other.pk != promotion.pk

    def test_a_cancelled_orders_use_is_shown_as_not_counted(self, manager, create, redeem, roster):
        promotion = create(code="SPRING10")
        order = redeem("SPRING10")
        with tenant_context(order.restaurant):
            order_cancel(actor=Actor(member=roster[("ours", "manager")]), order_id=order.pk)
        [row] = manager.get(reverse("api-promotion-redemptions", args=[promotion.pk])).json()[
            "results"
        ]
        assert row["counted"] is False
        detail = manager.get(reverse("api-promotion-detail", args=[promotion.pk])).json()
        assert detail["redemption_count"] == 0

    def test_redemptions_are_paged_by_cursor(self, manager, create, redeem):
        promotion = create(code="SPRING10")
        orders = [redeem("SPRING10", email=f"diner{n}@example.com") for n in range(3)]
        url = reverse("api-promotion-redemptions", args=[promotion.pk]) + "?page_size=2"
        page = manager.get(url).json()
        seen = [row["order"] for row in page["results"]]
        page = manager.get(page["next"]).json()
        seen += [row["order"] for row in page["results"]]
        assert page["next"] is None
        assert seen == [order.pk for order in reversed(orders)]

    def test_the_list_costs_the_same_for_one_use_and_many(self, manager, create, redeem):
        promotion = create(code="SPRING10")
        url = reverse("api-promotion-redemptions", args=[promotion.pk])
        redeem("SPRING10", email="one@example.com")
        manager.get(url)  # warm the organization lookup, as every later request finds it
        with CaptureQueriesContext(connection) as one:
            manager.get(url)
        for n in range(4):
            redeem("SPRING10", email=f"many{n}@example.com")
        with CaptureQueriesContext(connection) as many:
            assert len(manager.get(url).json()["results"]) == 5
        assert len(many) == len(one)


@pytest.mark.parametrize("role", ["cashier", "kitchen"])
def test_roles_without_the_scope_get_403_everywhere(roster, create, restaurants, role):
    promotion = create()
    client = api_client(roster[("ours", role)])
    answers = [
        client.get(reverse("api-promotions")),
        post(client, {**VALID, "code": "MINE"}),
        client.get(reverse("api-promotion-detail", args=[promotion.pk])),
        patch(client, promotion.pk, {"value": 99}),
        client.get(reverse("api-promotion-redemptions", args=[promotion.pk])),
    ]
    for response in answers:
        assert response.status_code == 403
        assert "SPRING10" not in response.content.decode()
    assert [p.value for p in stored(restaurants[0])] == [10]
