"""What diners get by email about their order, sent through the real ``resend`` SDK to a
loopback stand-in for Resend once the order's transaction commits."""

import logging
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.urls import resolve
from django.utils import timezone

from customers.consent import customer_for_token
from customers.models import Customer
from customers.services import customer_confirm_consent
from orders.checkout_request import parse_checkout
from orders.models import Order, Status
from orders.placement import place_order
from orders.services import order_transition
from orders.tasks import send_order_email
from promotions.models import Promotion
from staff.auth import Actor
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import make_shop, open_all_week
from tests.support.resend_server import API_KEY, ResendStandIn

# A Monday: 12:00 in Helsinki, where "ours" is.
NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
HELSINKI = ZoneInfo("Europe/Helsinki")
TIMES = "\u00d7"  # the multiplication sign between quantity and item

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def resend_api(settings, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with ResendStandIn() as server:
        settings.MAILERS = server.mailers()
        yield server


@pytest.fixture
def shop(restaurants):
    ours = restaurants[0]
    Restaurant.objects.filter(pk=ours.pk).update(
        name="Café & Grill",
        timezone="Europe/Helsinki",
        currency="EUR",
        tax_rate=Decimal("14"),
        prices_include_tax=True,
        address_line1="Rantatie 1",
        postal_code="00100",
        city="Helsinki",
        phone="+358 40 123 4567",
        delivery_enabled=True,
        delivery_fee=350,
    )
    ours.refresh_from_db()
    open_all_week(ours)
    ids = make_shop(ours)
    with tenant_context(ours):
        Promotion.objects.create(code="SPRING5", kind=Promotion.Kind.FIXED, value=500)
    return ours, ids


def place(restaurant, ids, *, key="k1", **fields):
    body = {
        "lines": [
            {
                "item_id": ids["burger"],
                "quantity": 2,
                "modifier_ids": [ids["large"], ids["cheese"]],
                "note": "No onions",
            },
            {"item_id": ids["fries"], "quantity": 1},
        ],
        "name": "Ada",
        "email": "ada@example.com",
        "tip": 100,
        "promotion_code": "SPRING5",
    } | fields
    with tenant_context(restaurant):
        order, created = place_order(
            restaurant=restaurant,
            request=parse_checkout(body, restaurant.zone),
            idempotency_key=key,
            now=NOW,
        )
    assert created
    return order


def move(restaurant, ids, order, to_status, reason=""):
    with tenant_context(restaurant):
        return order_transition(
            actor=Actor(member=ids["owner"]), order_id=order.pk, to_status=to_status, reason=reason
        )


def test_placing_an_order_sends_one_confirmation(resend_api, shop):
    ours, ids = shop

    order = place(ours, ids)

    (request,) = resend_api.requests
    assert (request.method, request.path) == ("POST", "/emails")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["idempotency-key"] == f"order-{order.public_id}-placed"
    email = request.body
    assert email["from"] == "Café & Grill <orders@nordkestrel.localhost>"
    assert email["to"] == ["ada@example.com"]
    assert email["subject"] == f"Your order #{order.number} at Café & Grill"
    text, html = email["text"], email["html"]
    link = f"http://ours.localhost:8000/orders/{order.public_id}"
    promised = timezone.localtime(order.promised_at, HELSINKI).strftime("%H:%M")
    for line in [
        "Hi Ada,",
        f"order #{order.number}",
        f"Pickup: Monday 4 May, around {promised}",
        "Payment: Pay at pickup",
        f"2 {TIMES} Burger (Large, Cheese): 33.00 EUR",
        "    Note: No onions",
        f"1 {TIMES} Fries: 4.50 EUR",
        "Subtotal: 37.50 EUR",
        "Discount (SPRING5): -5.00 EUR",
        "Tax (14%, incl.): 3.99 EUR",
        "Tip: 1.00 EUR",
        "Total: 33.50 EUR",
        f"Follow your order: {link}",
        "Rantatie 1, 00100 Helsinki",
        "+358 40 123 4567",
    ]:
        assert line in text
    # The promised time is the restaurant's, not UTC's.
    assert timezone.localtime(order.promised_at, UTC).strftime("%H:%M") not in text
    for fragment in [
        f"Order #{order.number} is confirmed",
        f"2 {TIMES} Burger",
        "Large, Cheese",
        "Note: No onions",
        "33.00 EUR",
        "Discount (SPRING5)",
        "-5.00 EUR",
        "Tax (14%, incl.)",
        ">33.50 EUR<",
        f'href="{link}"',
        "Café &amp; Grill",
        "Rantatie 1, 00100 Helsinki",
    ]:
        assert fragment in html
    assert "Delivery" not in text
    # The link is the storefront's status page for this order.
    match = resolve(urlsplit(link).path, urlconf="storefront.urls")
    assert (match.view_name, match.kwargs) == ("storefront:order", {"public_id": order.public_id})


def test_tax_added_on_top_is_not_marked_included(resend_api, shop):
    ours, ids = shop
    Restaurant.objects.filter(pk=ours.pk).update(prices_include_tax=False)
    ours.refresh_from_db()

    place(ours, ids)

    text = resend_api.emails[0].body["text"]
    assert "Tax (14%): 4.55 EUR" in text
    assert "Total: 38.05 EUR" in text


def test_a_delivery_order_names_the_address_and_the_fee(resend_api, shop):
    ours, ids = shop

    order = place(
        ours,
        ids,
        fulfilment="delivery",
        phone="+358 40 765 4321",
        address={"line1": "Kauppatori 2", "postal_code": "00170", "city": "Helsinki"},
    )
    move(ours, ids, order, Status.ACCEPTED)
    move(ours, ids, order, Status.PREPARING)
    move(ours, ids, order, Status.READY)

    placed, ready = (r.body for r in resend_api.emails)
    assert "Delivery to Kauppatori 2, 00170 Helsinki: Monday 4 May, around" in placed["text"]
    assert "Payment: Pay on delivery" in placed["text"]
    assert "Delivery: 3.50 EUR" in placed["text"]
    assert "Total: 37.00 EUR" in placed["text"]
    assert ready["subject"] == f"Your order #{order.number} at Café & Grill is on its way"
    assert "is on its way to Kauppatori 2, 00170 Helsinki." in ready["text"]
    assert "ready for pickup" not in ready["text"] + ready["html"]


def test_only_ready_and_cancelled_follow_the_confirmation(resend_api, shop):
    ours, ids = shop
    order = place(ours, ids)

    move(ours, ids, order, Status.ACCEPTED)
    move(ours, ids, order, Status.PREPARING)
    assert len(resend_api.emails) == 1

    move(ours, ids, order, Status.READY)
    assert len(resend_api.emails) == 2
    ready = resend_api.emails[-1]
    assert ready.headers["idempotency-key"] == f"order-{order.public_id}-ready"
    assert (
        ready.body["subject"] == f"Your order #{order.number} at Café & Grill is ready for pickup"
    )
    assert (
        f"Your order #{order.number} is ready for pickup at Café & Grill, "
        "Rantatie 1, 00100 Helsinki." in ready.body["text"]
    )
    assert "Your order is ready for pickup" in ready.body["html"]

    move(ours, ids, order, Status.COMPLETED)
    assert len(resend_api.emails) == 2


def test_cancelling_sends_the_reason_escaped_in_html(resend_api, shop):
    ours, ids = shop
    order = place(ours, ids)

    move(ours, ids, order, Status.CANCELLED, reason="Out of <b>buns</b> & bread")

    cancelled = resend_api.emails[-1].body
    assert cancelled["subject"] == f"Your order #{order.number} at Café & Grill was cancelled"
    assert "Reason: Out of <b>buns</b> & bread" in cancelled["text"]
    assert "Out of &lt;b&gt;buns&lt;/b&gt; &amp; bread" in cancelled["html"]
    assert "<b>buns" not in cancelled["html"]
    assert "Questions? Call +358 40 123 4567." in cancelled["text"]


def test_diner_text_is_escaped_in_html(resend_api, shop):
    ours, ids = shop
    order = place(ours, ids, name="<script>alert(1)</script>")

    email = resend_api.emails[0].body
    assert "<script>" not in email["html"]
    assert "Hi &lt;script&gt;alert(1)&lt;/script&gt;," in email["html"]
    # The plain-text part is not HTML: it shows the name as typed.
    assert "Hi <script>alert(1)</script>," in email["text"]
    assert order.contact_name == "<script>alert(1)</script>"


def test_a_resend_error_leaves_the_order_placed(resend_api, shop, caplog):
    ours, ids = shop
    resend_api.fail_next(500, "application_error", "Resend is having a moment.")

    with caplog.at_level(logging.ERROR):
        order = place(ours, ids)

    assert resend_api.delivered == []
    with tenant_context(ours):
        assert Order.objects.get(pk=order.pk).status == Status.PLACED
    (logged,) = [r for r in caplog.records if r.name == "orders.tasks"]
    assert (logged.order_id, logged.event) == (order.pk, "placed")
    assert "Resend is having a moment." in logged.getMessage()
    assert API_KEY not in caplog.text

    # The kitchen carries on, and the diner still hears about the next step.
    move(ours, ids, order, Status.ACCEPTED)
    move(ours, ids, order, Status.PREPARING)
    move(ours, ids, order, Status.READY)
    assert [e["subject"] for e in resend_api.delivered] == [
        f"Your order #{order.number} at Café & Grill is ready for pickup"
    ]


def test_sending_again_delivers_once(resend_api, shop):
    ours, ids = shop
    order = place(ours, ids)

    result = send_order_email.enqueue(restaurant_id=ours.pk, order_id=order.pk, event="placed")

    assert result.status == "SUCCESSFUL"
    assert len(resend_api.emails) == 2
    assert len({r.headers["idempotency-key"] for r in resend_api.emails}) == 1
    assert len(resend_api.delivered) == 1


def test_each_restaurant_sends_in_its_own_name(resend_api, shop, restaurants):
    ours, ids = shop
    theirs = restaurants[1]
    open_all_week(theirs)
    their_ids = make_shop(theirs)

    place(ours, ids, email="ada@example.com")
    place(theirs, their_ids, email="grace@example.com", promotion_code="")

    senders = {r.body["to"][0]: r.body["from"] for r in resend_api.emails}
    assert senders == {
        "ada@example.com": "Café & Grill <orders@nordkestrel.localhost>",
        "grace@example.com": f"{theirs.name} <orders@nordkestrel.localhost>",
    }


def test_without_the_stand_in_emails_land_in_the_test_outbox(shop):
    ours, ids = shop

    order = place(ours, ids)

    (email,) = mail.outbox
    assert email.subject == f"Your order #{order.number} at Café & Grill"
    assert email.to == ["ada@example.com"]
    assert email.sent_using == "default"  # type: ignore[attr-defined]


# --- Asking for news: the confirmation carries the double opt-in link ----------------------

CONFIRM_TEXT = "Confirm that you'd like news from Café & Grill: "
CONFIRM_HTML = "Confirm that you'd like news from Café &amp; Grill</a>"


def consent_link(text: str) -> str:
    (line,) = [line for line in text.splitlines() if line.startswith(CONFIRM_TEXT)]
    return line.removeprefix(CONFIRM_TEXT)


def test_asking_for_news_sends_a_link_to_confirm_it(resend_api, shop):
    ours, ids = shop

    order = place(ours, ids, marketing_consent=True)

    email = resend_api.emails[0].body
    link = consent_link(email["text"])
    assert "Nothing is sent until you confirm." in email["text"]
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc) == ("http", "ours.localhost:8000")
    match = resolve(parts.path, urlconf="storefront.urls")
    assert match.view_name == "storefront:consent-confirm"
    assert f'<a href="{link}">{CONFIRM_HTML}' in email["html"]
    with tenant_context(ours):
        assert customer_for_token(match.kwargs["token"]) == order.customer
        assert Customer.objects.get().marketing_consent is False, "asked, not yet consenting"


def test_no_link_when_this_order_did_not_ask(resend_api, shop):
    ours, ids = shop
    place(ours, ids, key="asked", marketing_consent=True)

    place(ours, ids, key="not-asked", promotion_code="")

    asked, not_asked = (r.body for r in resend_api.emails)
    assert CONFIRM_TEXT in asked["text"]
    assert "news" not in not_asked["text"] + not_asked["html"]


def test_no_link_for_a_customer_who_consents_already(resend_api, shop):
    ours, ids = shop
    first = place(ours, ids, key="first", marketing_consent=True)
    with tenant_context(ours):
        customer_confirm_consent(customer_id=first.customer_id, now=NOW)

    second = place(ours, ids, key="second", promotion_code="", marketing_consent=True)

    assert second.consent_requested is True
    email = resend_api.emails[-1].body
    assert "news" not in email["text"] + email["html"]


def test_only_the_confirmation_carries_the_link(resend_api, shop):
    ours, ids = shop
    order = place(ours, ids, marketing_consent=True)

    move(ours, ids, order, Status.CANCELLED, reason="Closed early")

    placed, cancelled = (r.body for r in resend_api.emails)
    assert CONFIRM_TEXT in placed["text"]
    assert "news" not in cancelled["text"] + cancelled["html"]
