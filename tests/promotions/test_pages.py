"""/dashboard/promotions: the list, the create and edit forms (money in major units, times in
the restaurant's local time) and a code's redemptions."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.test import Client

from audit.models import AuditEvent
from promotions.models import Promotion
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import token_for

pytestmark = pytest.mark.django_db

FORM = {
    "code": "SPRING5",
    "description": "Spring",
    "kind": "fixed",
    "value": "5.00",
    "min_subtotal": "20.00",
    "starts_at": "2026-06-01T09:00",
    "ends_at": "2026-06-30T23:30",
    "max_redemptions": "10",
    "per_customer_limit": "1",
    "active": "on",
}


def signed_in(member) -> Client:
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token_for(member)
    return client


def stored(restaurant) -> list[Promotion]:
    with tenant_context(restaurant):
        return list(Promotion.objects.order_by("id"))


def audit_events(restaurant, action) -> list[AuditEvent]:
    with tenant_context(restaurant):
        return list(AuditEvent.objects.filter(action=action))


def field_value(html: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert tag, name
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return value.group(1) if value else ""


@pytest.fixture
def helsinki(restaurants):
    Restaurant.objects.filter(pk=restaurants[0].pk).update(timezone="Europe/Helsinki")
    return restaurants[0]


@pytest.fixture
def manager(roster) -> Client:
    return signed_in(roster[("ours", "manager")])


def test_create_reads_money_in_major_units_and_times_in_local_time(manager, helsinki):
    response = manager.post("/dashboard/promotions", FORM)
    assert response.status_code == 302
    [promotion] = stored(helsinki)
    assert response["Location"] == f"/dashboard/promotions/{promotion.pk}"
    assert (promotion.code, promotion.kind, promotion.value) == ("SPRING5", "fixed", 500)
    assert promotion.min_subtotal == 2000
    # Helsinki is UTC+3 in summer.
    assert promotion.starts_at == datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    assert promotion.ends_at == datetime(2026, 6, 30, 20, 30, tzinfo=UTC)
    assert (promotion.max_redemptions, promotion.per_customer_limit) == (10, 1)
    assert promotion.active and not promotion.first_order_only
    assert len(audit_events(helsinki, "promotion.created")) == 1


def test_the_edit_form_shows_the_values_as_typed_and_saves_back_unchanged(manager, helsinki):
    manager.post("/dashboard/promotions", FORM)
    [promotion] = stored(helsinki)
    page = manager.get(f"/dashboard/promotions/{promotion.pk}")
    assert page.status_code == 200
    html = page.content.decode()
    typed = {name: value for name, value in FORM.items() if name not in ("kind", "active")}
    assert {name: field_value(html, name) for name in typed} == typed
    assert re.search(r'<option value="fixed" selected>', html)
    assert re.search(r'<input[^>]*name="active"[^>]*checked', html)
    # Posting the form straight back changes nothing, so nothing is audited.
    resubmitted = manager.post(f"/dashboard/promotions/{promotion.pk}", {**FORM, "kind": "fixed"})
    assert resubmitted.status_code == 302
    assert stored(helsinki)[0].starts_at == promotion.starts_at
    assert audit_events(helsinki, "promotion.updated") == []


def test_a_winter_time_uses_the_winter_offset(manager, helsinki):
    manager.post("/dashboard/promotions", {**FORM, "starts_at": "2026-01-10T09:00", "ends_at": ""})
    [promotion] = stored(helsinki)
    assert promotion.starts_at == datetime(2026, 1, 10, 7, 0, tzinfo=UTC)
    assert promotion.ends_at is None


def test_editing_saves_and_audits_the_change(manager, helsinki):
    manager.post("/dashboard/promotions", FORM)
    [promotion] = stored(helsinki)
    response = manager.post(
        f"/dashboard/promotions/{promotion.pk}",
        {**FORM, "kind": "percent", "value": "15", "ends_at": "2026-07-01T00:00"},
    )
    assert response.status_code == 302
    [updated] = stored(helsinki)
    assert (updated.kind, updated.value) == ("percent", 15)
    assert updated.ends_at == datetime(2026, 6, 30, 21, 0, tzinfo=UTC)
    [event] = audit_events(helsinki, "promotion.updated")
    assert set(event.changes) == {"kind", "value", "ends_at"}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"code": "no"}, "code", "3-32 characters"),
        ({"kind": "percent", "value": "150"}, "value", "1 to 100"),
        ({"kind": "percent", "value": "12.5"}, "value", "whole number"),
        ({"value": "five"}, "value", "Not a number"),
        ({"value": "5.005"}, "value", "at most 2 decimals"),
        ({"min_subtotal": "-1"}, "min_subtotal", "zero or more"),
        ({"ends_at": "2026-05-01T00:00"}, "ends_at", "after the start"),
        ({"starts_at": "2026-03-29T03:30"}, "starts_at", "may not exist"),  # clocks go forward
        ({"starts_at": "not a time"}, "starts_at", "valid date"),
        ({"max_redemptions": "0"}, "max_redemptions", "1 or more"),
        ({"per_customer_limit": "many"}, "per_customer_limit", "whole number"),
        ({"description": "x" * 201}, "description", "200 characters"),
    ],
)
def test_errors_are_shown_next_to_the_field_with_a_400_and_nothing_saved(
    manager, helsinki, change, field, message
):
    response = manager.post("/dashboard/promotions", {**FORM, **change})
    assert response.status_code == 400
    html = response.content.decode()
    block = re.search(
        rf'<div class="field invalid">(?:(?!<div class="field).)*?name="{field}".*?</div>',
        html,
        re.S,
    )
    assert block, f"no error next to {field}"
    assert message in block.group(0)
    assert stored(helsinki) == []


def test_a_code_taken_in_another_case_is_shown_on_the_code(manager, helsinki):
    manager.post("/dashboard/promotions", FORM)
    response = manager.post("/dashboard/promotions", {**FORM, "code": "spring5"})
    assert response.status_code == 400
    assert "already uses this code" in response.content.decode()
    assert len(stored(helsinki)) == 1


def test_the_list_shows_status_and_uses(manager, create, redeem, restaurants):
    create(code="CAPPED", kind="fixed", value=250, max_redemptions=10)
    create(code="OPEN", active=False)
    for n in range(7):
        redeem("capped", email=f"diner{n}@example.com")
    html = manager.get("/dashboard/promotions").content.decode()
    capped = re.search(r"<tr>(?:(?!</tr>).)*CAPPED.*?</tr>", html, re.S)
    assert capped
    assert "7 / 10" in capped.group(0)
    assert "Active" in capped.group(0)
    assert "2.50 EUR" in capped.group(0)
    paused = re.search(r"<tr>(?:(?!</tr>).)*OPEN.*?</tr>", html, re.S)
    assert paused
    assert "Inactive" in paused.group(0)


def test_a_codes_page_lists_its_redemptions_and_locks_a_used_code(
    manager, create, redeem, restaurants
):
    promotion = create(code="SPRING10")
    order = redeem("SPRING10", email="grace@example.com")
    html = manager.get(f"/dashboard/promotions/{promotion.pk}").content.decode()
    assert "grace@example.com" in html
    assert f"#{order.number}" in html
    assert "2.40" in html  # 10 % of 24.00
    assert re.search(r'<input[^>]*name="code"[^>]*disabled', html)
    # A posted code is ignored once it is locked.
    response = manager.post(
        f"/dashboard/promotions/{promotion.pk}",
        {"code": "HACKED", "kind": "percent", "value": "20", "active": "on"},
    )
    assert response.status_code == 302
    [saved] = stored(restaurants[0])
    assert (saved.code, saved.value) == ("SPRING10", 20)


def test_another_restaurants_codes_are_not_shown_and_their_pages_are_404(
    manager, roster, restaurants
):
    theirs = signed_in(roster[("theirs", "owner")])
    theirs.post("/dashboard/promotions", {**FORM, "code": "THEIRS-ONLY"})
    [foreign] = stored(restaurants[1])
    assert "THEIRS-ONLY" not in manager.get("/dashboard/promotions").content.decode()
    assert manager.get(f"/dashboard/promotions/{foreign.pk}").status_code == 404
    response = manager.post(f"/dashboard/promotions/{foreign.pk}", {**FORM, "value": "1.00"})
    assert response.status_code == 404
    assert stored(restaurants[1])[0].value == 500


@pytest.mark.parametrize("role", ["cashier", "kitchen"])
def test_roles_without_the_scope_are_refused(roster, create, restaurants, role):
    promotion = create(code="SPRING10")
    client = signed_in(roster[("ours", role)])
    assert "Promotions" not in client.get("/dashboard/").content.decode()
    for response in (
        client.get("/dashboard/promotions"),
        client.post("/dashboard/promotions", {**FORM, "code": "MINE"}),
        client.get(f"/dashboard/promotions/{promotion.pk}"),
        client.post(f"/dashboard/promotions/{promotion.pk}", FORM),
    ):
        assert response.status_code == 403
        assert "SPRING10" not in response.content.decode()
    assert [p.code for p in stored(restaurants[0])] == ["SPRING10"]


def test_the_list_is_paged_newest_first(manager, restaurants):
    with tenant_context(restaurants[0]):
        Promotion.objects.bulk_create(
            [Promotion(code=f"CODE{n:02}", kind="percent", value=5) for n in range(51)]
        )
    html = manager.get("/dashboard/promotions").content.decode()
    assert "CODE50" in html and "CODE01" in html and "CODE00" not in html
    older = re.search(r'<a href="([^"]+)" rel="next">Older codes</a>', html)
    assert older
    html = manager.get("/dashboard/promotions" + older.group(1)).content.decode()
    assert "CODE00" in html and "CODE01" not in html


@pytest.mark.parametrize("pk", ["0", "99999999999999999999"])
def test_an_id_that_cannot_exist_is_404(manager, pk):
    assert manager.get(f"/dashboard/promotions/{pk}").status_code == 404
    assert manager.get(f"/dashboard/customers/{pk}").status_code == 404
