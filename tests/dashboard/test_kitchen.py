"""The kitchen queue and the order pages of the dashboard, as each role sees them."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from orders.checkout_request import parse_checkout
from orders.models import Order, StatusChange
from orders.placement import place_order
from tenants.context import tenant_context
from tests.factories import make_shop, open_all_week, token_for

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)  # a Monday, inside opening hours
DINER = {
    "name": "Ada Lovelace",
    "email": "private.diner@example.com",
    "phone": "+358 40 7654321",
}
CONTACT_STRINGS = [
    "Ada Lovelace",
    "private.diner@example.com",
    "7654321",
    "Secret Street",
    "Ring twice",
]

pytestmark = pytest.mark.django_db


def signed_in(member):
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token_for(member)
    return client


@pytest.fixture
def shops(roster, restaurants):
    for restaurant in restaurants:
        restaurant.delivery_enabled = True
        restaurant.save(update_fields=["delivery_enabled"])
        open_all_week(restaurant)
    return {restaurant.slug: make_shop(restaurant) for restaurant in restaurants}


_keys = iter(range(1, 10_000))


def place(restaurant, ids, *, fulfilment="delivery", **fields) -> Order:
    body = {
        "lines": [
            {
                "item_id": ids["burger"],
                "quantity": 2,
                "modifier_ids": [ids["large"], ids["bacon"]],
                "note": "No onions",
            },
            {"item_id": ids["fries"], "quantity": 1},
        ],
        **DINER,
        "fulfilment": fulfilment,
    }
    if fulfilment == "delivery":
        body["address"] = {"line1": "Secret Street 5", "postal_code": "00100", "city": "Helsinki"}
        body["delivery_notes"] = "Ring twice"
    with tenant_context(restaurant):
        order, _ = place_order(
            restaurant=restaurant,
            request=parse_checkout(body, restaurant.zone),
            idempotency_key=f"key-{next(_keys)}",
            now=NOW,
        )
        if fields:
            Order.objects.filter(pk=order.pk).update(**fields)
            order.refresh_from_db()
    return order


def current(restaurant, order) -> Order:
    with tenant_context(restaurant):
        return Order.objects.get(pk=order.pk)


def tickets(html: str) -> list[int]:
    """The order ids on the queue, in page order."""
    return [
        int(pk) for pk in re.findall(r'<article class="ticket[^"]*" data-order-id="(\d+)"', html)
    ]


def ticket(html: str, order: Order) -> str:
    match = re.search(
        rf'<article class="(ticket[^"]*)" data-order-id="{order.pk}".*?</article>', html, re.S
    )
    assert match, f"order {order.pk} is not on the page"
    return match.group(0)


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.S)
    assert match, pattern
    return match.group(1)


def future() -> datetime:
    return timezone.now() + timedelta(hours=1)


# --- The queue -------------------------------------------------------------------------------


def test_the_queue_shows_active_orders_oldest_first(roster, restaurants, shops):
    ours, theirs = restaurants
    start = timezone.now() - timedelta(hours=1)
    statuses = ["ready", "placed", "completed", "accepted", "cancelled", "preparing"]
    orders = {}
    for minutes, status in zip([50, 10, 5, 30, 1, 20], statuses, strict=True):
        orders[status] = place(
            ours, shops["ours"], status=status, created_at=start + timedelta(minutes=minutes)
        )
    place(theirs, shops["theirs"])
    response = signed_in(roster[("ours", "kitchen")]).get("/dashboard/kitchen")
    assert response.status_code == 200
    html = response.content.decode()
    assert tickets(html) == [
        orders["placed"].pk,
        orders["preparing"].pk,
        orders["accepted"].pk,
        orders["ready"].pk,
    ]


def test_cards_show_number_fulfilment_age_promised_time_lines_options_and_notes(
    roster, restaurants, shops
):
    ours = restaurants[0]
    ours.timezone = "Europe/Helsinki"
    ours.save(update_fields=["timezone"])
    now = timezone.now()
    promised = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    order = place(ours, shops["ours"], placed_at=now - timedelta(minutes=7), promised_at=promised)
    html = signed_in(roster[("ours", "kitchen")]).get("/dashboard/kitchen").content.decode()
    card = ticket(html, order)
    assert f"#{order.number}" in card
    assert "Delivery" in card
    assert "placed 7 min ago" in card
    local = promised.astimezone(ours.zone)
    assert f"{local:%H:%M}" in card
    assert "2\N{MULTIPLICATION SIGN}" in card and "Burger" in card
    assert "Size: Large" in card and "Extras: Bacon" in card
    assert "No onions" in card
    assert "Fries" in card
    assert "is-new" in card and "New" in card


def test_late_orders_are_marked_with_a_word_and_a_class(roster, restaurants, shops):
    ours = restaurants[0]
    past = timezone.now() - timedelta(minutes=5)
    late = place(ours, shops["ours"], status="preparing", promised_at=past)
    on_time = place(ours, shops["ours"], status="preparing", promised_at=future())
    ready_after_promise = place(ours, shops["ours"], status="ready", promised_at=past)
    html = signed_in(roster[("ours", "kitchen")]).get("/dashboard/kitchen").content.decode()
    assert "is-late" in ticket(html, late)
    assert ">Late<" in ticket(html, late)
    for order in (on_time, ready_after_promise):
        assert "is-late" not in ticket(html, order)
        assert ">Late<" not in ticket(html, order)


def test_the_one_tap_button_takes_the_next_step_and_comes_back(roster, restaurants, shops):
    ours = restaurants[0]
    order = place(ours, shops["ours"], promised_at=future())
    client = signed_in(roster[("ours", "kitchen")])
    steps = []
    for expected in ["accepted", "preparing", "ready", "completed"]:
        card = ticket(client.get("/dashboard/kitchen").content.decode(), order)
        action = found(r'<form method="post" action="([^"]+/status)">', card)
        status = found(r'name="status" value="([a-z_]+)"', card)
        back = found(r'name="next" value="([^"]+)"', card)
        assert status == expected
        response = client.post(action, {"status": status, "next": back})
        assert response.status_code == 303
        assert response["Location"] == "/dashboard/kitchen"
        steps.append(current(ours, order).status)
    assert steps == ["accepted", "preparing", "ready", "completed"]
    # Completed orders leave the queue.
    assert order.pk not in tickets(client.get("/dashboard/kitchen").content.decode())


def test_a_double_submit_does_not_skip_a_step(roster, restaurants, shops):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    client = signed_in(roster[("ours", "cashier")])
    form = {"status": "accepted", "next": "/dashboard/kitchen"}
    first = client.post(f"/dashboard/orders/{order.pk}/status", form)
    second = client.post(f"/dashboard/orders/{order.pk}/status", form)
    assert (first.status_code, second.status_code) == (303, 303)
    assert current(ours, order).status == "accepted"
    with tenant_context(ours):
        assert StatusChange.objects.filter(order_id=order.pk, to_status="accepted").count() == 1
    page = client.get("/dashboard/kitchen").content.decode()
    assert "already accepted" in page


def test_an_illegal_step_is_a_message_not_an_error(roster, restaurants, shops):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    client = signed_in(roster[("ours", "kitchen")])
    for status in ("completed", "eaten", ""):
        response = client.post(
            f"/dashboard/orders/{order.pk}/status", {"status": status, "next": "/dashboard/kitchen"}
        )
        assert response.status_code == 303
    page = client.get("/dashboard/kitchen").content.decode()
    assert "cannot become completed" in page
    assert "Choose the status" in page
    assert current(ours, order).status == "placed"


def test_an_offsite_next_is_ignored(roster, restaurants, shops):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    response = signed_in(roster[("ours", "kitchen")]).post(
        f"/dashboard/orders/{order.pk}/status",
        {"status": "accepted", "next": "https://evil.example.com/dashboard/"},
    )
    assert response.status_code == 303
    assert response["Location"] == f"/dashboard/orders/{order.pk}"


def test_the_fragment_is_just_the_queue_and_sees_new_orders(roster, restaurants, shops):
    ours = restaurants[0]
    client = signed_in(roster[("ours", "kitchen")])
    empty = client.get("/dashboard/kitchen/queue")
    assert empty.status_code == 200
    assert "no-store" in {part.strip() for part in empty["Cache-Control"].split(",")}
    assert 'id="kitchen-queue"' in empty.content.decode()
    assert "No active orders" in empty.content.decode()
    assert "<nav" not in empty.content.decode()
    order = place(ours, shops["ours"])
    fragment = client.get("/dashboard/kitchen/queue").content.decode()
    assert tickets(fragment) == [order.pk]
    assert "csrfmiddlewaretoken" in fragment  # its forms still post


def test_the_kitchen_page_loads_its_script_from_a_file_only(roster, restaurants, shops):
    response = signed_in(roster[("ours", "kitchen")]).get("/dashboard/kitchen")
    html = response.content.decode()
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts
    assert all('src="/static/dashboard/kitchen' in s and "nonce=" in s for s in scripts)
    assert "<style" not in html
    assert " style=" not in html
    assert 'data-src="/dashboard/kitchen/queue"' in html
    assert 'id="kitchen-sound"' in html
    assert "script-src" in response["Content-Security-Policy"]


# --- Contact data ----------------------------------------------------------------------------


def test_the_kitchen_role_sees_no_contact_data_anywhere(roster, restaurants, shops):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    client = signed_in(roster[("ours", "kitchen")])
    for url in (
        "/dashboard/kitchen",
        "/dashboard/kitchen/queue",
        "/dashboard/orders",
        f"/dashboard/orders/{order.pk}",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert f"#{order.number}" in html, url
        for secret in CONTACT_STRINGS:
            assert secret not in html, (url, secret)


@pytest.mark.parametrize("role", ["cashier", "manager"])
def test_cashier_and_up_see_contact_data(roster, restaurants, shops, role):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    client = signed_in(roster[("ours", role)])
    kitchen = client.get("/dashboard/kitchen").content.decode()
    assert "Ada Lovelace" in kitchen and "7654321" in kitchen and "Secret Street 5" in kitchen
    detail = client.get(f"/dashboard/orders/{order.pk}").content.decode()
    for secret in CONTACT_STRINGS:
        assert secret in detail
    assert "Ada Lovelace" in client.get("/dashboard/orders").content.decode()


# --- Cancelling ------------------------------------------------------------------------------


def test_a_manager_cancels_from_the_queue(roster, restaurants, shops):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    client = signed_in(roster[("ours", "manager")])
    card = ticket(client.get("/dashboard/kitchen").content.decode(), order)
    assert 'data-testid="cancel-form"' in card
    action = found(r'action="([^"]+/cancel)"', card)
    response = client.post(action, {"reason": "Out of buns", "next": "/dashboard/kitchen"})
    assert response.status_code == 303
    assert response["Location"] == "/dashboard/kitchen"
    after = current(ours, order)
    assert (after.status, after.cancel_reason) == ("cancelled", "Out of buns")
    with tenant_context(ours):
        assert AuditEvent.objects.filter(action="order.cancelled").count() == 1
    page = client.get("/dashboard/kitchen").content.decode()
    assert order.pk not in tickets(page)
    assert f"Order #{order.number} was cancelled." in page


def test_a_manager_cancels_from_the_order_page(roster, restaurants, shops):
    ours = restaurants[0]
    order = place(ours, shops["ours"], status="ready")
    client = signed_in(roster[("ours", "manager")])
    page = client.get(f"/dashboard/orders/{order.pk}").content.decode()
    assert 'data-testid="cancel-form"' in page
    response = client.post(
        f"/dashboard/orders/{order.pk}/cancel",
        {"reason": "Never collected", "next": f"/dashboard/orders/{order.pk}"},
    )
    assert response["Location"] == f"/dashboard/orders/{order.pk}"
    page = client.get(f"/dashboard/orders/{order.pk}").content.decode()
    assert "Never collected" in page
    assert 'data-testid="cancel-form"' not in page, "a cancelled order offers no cancel"
    assert 'data-testid="next-step"' not in page


def test_a_refused_cancel_is_a_message(roster, restaurants, shops):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    done = place(ours, shops["ours"], status="completed")
    client = signed_in(roster[("ours", "manager")])
    too_long = client.post(
        f"/dashboard/orders/{order.pk}/cancel", {"reason": "x" * 301, "next": "/dashboard/kitchen"}
    )
    finished = client.post(f"/dashboard/orders/{done.pk}/cancel", {"reason": "Too late"})
    assert (too_long.status_code, finished.status_code) == (303, 303)
    page = client.get("/dashboard/kitchen").content.decode()
    assert "Use at most 300 characters." in page
    assert current(ours, order).status == "placed"
    assert current(ours, done).status == "completed"
    with tenant_context(ours):
        assert not AuditEvent.objects.filter(action="order.cancelled").exists()


@pytest.mark.parametrize("role", ["kitchen", "cashier"])
def test_no_cancel_form_and_a_forged_cancel_is_refused(roster, restaurants, shops, role):
    ours = restaurants[0]
    order = place(ours, shops["ours"])
    client = signed_in(roster[("ours", role)])
    for url in ("/dashboard/kitchen", f"/dashboard/orders/{order.pk}"):
        html = client.get(url).content.decode()
        assert 'data-testid="cancel-form"' not in html
        assert "/cancel" not in html
    forged = client.post(f"/dashboard/orders/{order.pk}/cancel", {"reason": "forged"})
    assert forged.status_code == 403
    through_status = client.post(f"/dashboard/orders/{order.pk}/status", {"status": "cancelled"})
    assert through_status.status_code == 403
    after = current(ours, order)
    assert (after.status, after.cancel_reason) == ("placed", "")
    with tenant_context(ours):
        assert not AuditEvent.objects.filter(action="order.cancelled").exists()


# --- The orders list and one order -----------------------------------------------------------


def test_another_restaurants_order_is_404(roster, restaurants, shops):
    theirs_order = place(restaurants[1], shops["theirs"])
    client = signed_in(roster[("ours", "owner")])
    assert client.get(f"/dashboard/orders/{theirs_order.pk}").status_code == 404
    assert client.get("/dashboard/orders/999999999").status_code == 404
    assert (
        client.post(
            f"/dashboard/orders/{theirs_order.pk}/status", {"status": "accepted"}
        ).status_code
        == 404
    )
    assert (
        client.post(f"/dashboard/orders/{theirs_order.pk}/cancel", {"reason": "x"}).status_code
        == 404
    )
    assert current(restaurants[1], theirs_order).status == "placed"


def test_the_order_page_shows_lines_totals_and_history(roster, restaurants, shops):
    ours = restaurants[0]
    ours.timezone = "Asia/Tokyo"  # UTC+9: times on the page are the restaurant's
    ours.save(update_fields=["timezone"])
    order = place(ours, shops["ours"])
    cook = roster[("ours", "kitchen")]
    client = signed_in(cook)
    client.post(f"/dashboard/orders/{order.pk}/status", {"status": "accepted"})
    html = client.get(f"/dashboard/orders/{order.pk}").content.decode()
    assert f"Order #{order.number}" in html
    assert "Burger" in html and "Size: Large" in html and "No onions" in html
    assert f"{order.total / 100:.2f}" in html
    history = found(r'data-testid="history">(.*?)</ol>', html)
    assert "Placed" in history and "Accepted" in history
    assert "2025-01-06 21:00:00" in history  # placed at 12:00 UTC
    assert cook.label in history
    assert 'value="preparing"' in html  # the next step is offered


def test_the_orders_list_is_newest_first_filtered_and_paged(roster, restaurants, shops):
    ours = restaurants[0]
    start = timezone.now() - timedelta(days=2)
    orders = [place(ours, shops["ours"], created_at=start + timedelta(minutes=i)) for i in range(3)]
    with tenant_context(ours):
        Order.objects.filter(pk=orders[0].pk).update(status="completed")
    client = signed_in(roster[("ours", "kitchen")])

    def rows(query=""):
        response = client.get(f"/dashboard/orders{query}")
        assert response.status_code == 200
        return [
            int(pk) for pk in re.findall(r'<tr data-order-id="(\d+)"', response.content.decode())
        ]

    assert rows() == [o.pk for o in reversed(orders)]
    assert rows("?status=active") == [orders[2].pk, orders[1].pk]
    assert rows("?status=completed") == [orders[0].pk]
    day = (start + timedelta(days=1)).date().isoformat()
    assert rows(f"?date_from={day}") == []
    assert rows(f"?date_to={day}") == [o.pk for o in reversed(orders)]
    assert client.get("/dashboard/orders?status=eaten").status_code == 400
    assert client.get("/dashboard/orders?date_from=2025-02-30").status_code == 400
    assert (
        client.get("/dashboard/orders?date_from=2025-02-02&date_to=2025-02-01").status_code == 400
    )


def test_the_orders_list_pages(roster, restaurants, shops, monkeypatch):
    from dashboard import order_views

    monkeypatch.setattr(order_views, "ORDERS_PAGE_SIZE", 2)
    ours = restaurants[0]
    orders = [place(ours, shops["ours"], fulfilment="pickup") for _ in range(3)]
    client = signed_in(roster[("ours", "manager")])
    first = client.get("/dashboard/orders?status=placed").content.decode()
    assert 'rel="next"' in first
    second = client.get("/dashboard/orders?status=placed&page=2").content.decode()
    ids = re.findall(r'<tr data-order-id="(\d+)"', first + second)
    assert [int(pk) for pk in ids] == [o.pk for o in reversed(orders)]
    assert "status=placed&amp;page=1" in second
    assert client.get("/dashboard/orders?page=zzz").status_code == 200


def test_navigation_offers_kitchen_and_orders_to_every_role(roster, restaurants):
    for role in ("owner", "kitchen"):
        nav = signed_in(roster[("ours", role)]).get("/dashboard/").content.decode()
        assert 'href="/dashboard/kitchen"' in nav
        assert 'href="/dashboard/orders"' in nav
