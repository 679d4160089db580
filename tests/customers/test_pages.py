"""/dashboard/customers: the searchable list and one customer's page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from customers.services import customer_confirm_consent
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import token_for

from .conftest import NOW

pytestmark = pytest.mark.django_db


def signed_in(member) -> Client:
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token_for(member)
    return client


@pytest.fixture
def manager(roster) -> Client:
    return signed_in(roster[("ours", "manager")])


def row_of(html: str, email: str) -> str:
    row = re.search(rf"<tr>(?:(?!</tr>).)*{re.escape(email)}.*?</tr>", html, re.S)
    assert row, email
    return row.group(0)


def test_the_list_shows_money_and_consent_in_words(manager, customer, restaurants):
    Restaurant.objects.filter(pk=restaurants[0].pk).update(timezone="Europe/Helsinki")
    customer(
        "ada@example.com", name="Ada Lovelace", order_count=3, total_spent=12345,
        last_order_at=NOW, marketing_consent=True, consent_source="checkout",
        # Late on 31 May in UTC is already 1 June in Helsinki.
        consent_at=datetime(2026, 5, 31, 22, 30, tzinfo=UTC),
    )  # fmt: skip
    customer("grace@example.com", name="Grace Hopper")
    response = manager.get("/dashboard/customers")
    assert response.status_code == 200
    html = response.content.decode()
    ada = row_of(html, "ada@example.com")
    assert "123.45" in ada
    assert "Yes, since 2026-06-01, at checkout, confirmed by email" in ada
    assert "2026-06-01 15:00" in ada  # the last order, 12:00 UTC, in local time
    assert ">No<" in row_of(html, "grace@example.com")


def test_search_and_consent_filter(manager, customer, restaurants):
    customer("ada@example.com", name="Ada Lovelace", marketing_consent=True)
    customer("grace@example.com", name="Grace Hopper", phone="+1 555 0100")
    customer("theirs@example.com", restaurant=restaurants[1], name="Ada Theirs")
    html = manager.get("/dashboard/customers", {"q": " LOVELACE "}).content.decode()
    assert "ada@example.com" in html and "grace@example.com" not in html
    html = manager.get("/dashboard/customers", {"q": "555"}).content.decode()
    assert "grace@example.com" in html and "ada@example.com" not in html
    html = manager.get("/dashboard/customers", {"marketing_consent": "false"}).content.decode()
    assert "grace@example.com" in html and "ada@example.com" not in html
    html = manager.get("/dashboard/customers", {"q": "ada"}).content.decode()
    assert "theirs@example.com" not in html


@pytest.mark.parametrize(
    "params",
    [{"q": "x" * 255}, {"marketing_consent": "maybe"}, {"cursor": "garbage"}, {"q": "a\x00"}],
)
def test_bad_input_is_a_400(manager, customer, params):
    customer("ada@example.com")
    response = manager.get("/dashboard/customers", params)
    assert response.status_code == 400
    assert "ada@example.com" not in response.content.decode()


def test_the_list_is_paged(manager, customer):
    for n in range(55):
        customer(f"diner{n:02}@example.com", last_order_at=NOW - timedelta(minutes=n))
    html = manager.get("/dashboard/customers").content.decode()
    assert "diner00@example.com" in html and "diner49@example.com" in html
    assert "diner50@example.com" not in html
    older = re.search(r'<a href="([^"]+)" rel="next">', html)
    assert older
    html = manager.get("/dashboard/customers" + older.group(1).replace("&amp;", "&")).content
    text = html.decode()
    assert "diner50@example.com" in text and "diner54@example.com" in text
    assert "diner49@example.com" not in text
    assert 'rel="prev"' in text and 'rel="next"' not in text


def test_a_customers_page_lists_their_orders_with_links(manager, order):
    first = order("ada@example.com")
    second = order("ada@example.com", now=NOW + timedelta(hours=1))
    response = manager.get(f"/dashboard/customers/{first.customer_id}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "ada@example.com" in html
    assert "9.00 EUR" in html  # two orders of fries at 4.50
    assert "<dt>Marketing consent</dt><dd>No</dd>" in html
    for placed in (first, second):
        assert f"#{placed.number}" in html
        assert f'href="/dashboard/orders/{placed.pk}"' in html
    assert html.index(f"#{second.number}") < html.index(f"#{first.number}")


def test_consent_reads_as_asked_then_confirmed(manager, order, restaurants):
    placed = order("ada@example.com", marketing_consent=True)
    page = f"/dashboard/customers/{placed.customer_id}"
    html = manager.get(page).content.decode()
    assert "<dd>No (asked 2026-06-01, not confirmed by email)</dd>" in html
    listed = manager.get("/dashboard/customers").content.decode()
    assert "No (asked 2026-06-01, not confirmed by email)" in row_of(listed, "ada@example.com")
    consenting = manager.get("/dashboard/customers", {"marketing_consent": "true"})
    assert "ada@example.com" not in consenting.content.decode()
    with tenant_context(restaurants[0]):
        customer_confirm_consent(customer_id=placed.customer_id, now=NOW + timedelta(days=1))
    html = manager.get(page).content.decode()
    assert "<dd>Yes, since 2026-06-02, at checkout, confirmed by email</dd>" in html


def test_another_restaurants_customer_is_404(manager, customer, restaurants):
    theirs = customer("secret@theirs.example", restaurant=restaurants[1])
    response = manager.get(f"/dashboard/customers/{theirs.pk}")
    assert response.status_code == 404
    assert "secret@theirs.example" not in response.content.decode()


@pytest.mark.parametrize("role", ["cashier", "kitchen"])
def test_roles_without_the_scope_are_refused(roster, customer, role):
    ada = customer("ada@example.com")
    client = signed_in(roster[("ours", role)])
    assert "Customers" not in client.get("/dashboard/").content.decode()
    for path in ("/dashboard/customers", f"/dashboard/customers/{ada.pk}"):
        response = client.get(path)
        assert response.status_code == 403
        assert "ada@example.com" not in response.content.decode()


def test_the_navigation_links_to_customers_and_promotions_for_managers(manager):
    html = manager.get("/dashboard/").content.decode()
    assert 'href="/dashboard/customers"' in html
    assert 'href="/dashboard/promotions"' in html
