"""A diner orders on one restaurant's storefront; the kitchen moves the order through the
dashboard; the diner's status page follows by itself. All in a real browser."""

from datetime import time

import pytest
from django.core import mail
from playwright.sync_api import Browser, Page, expect

from orders.models import Order, Status
from tenants.context import tenant_context
from tenants.models import OpeningHours, Restaurant
from tests.e2e.conftest import WATCH_CSP
from tests.factories import make_shop

pytestmark = pytest.mark.django_db(transaction=True)

# The status page polls every 5 s: allow a couple of rounds.
POLL_TIMEOUT_MS = 15_000


@pytest.fixture
def shop(roster, restaurants):
    """Ours is open around the clock with no preparation time, so ASAP is always offered."""
    ours, theirs = restaurants
    ids = make_shop(ours)
    make_shop(theirs)
    Restaurant.objects.filter(pk=ours.pk).update(prep_time_minutes=0)
    with tenant_context(ours):
        OpeningHours.objects.bulk_create(
            [OpeningHours(weekday=d, opens=time(0), closes=time(12)) for d in range(7)]
            + [OpeningHours(weekday=d, opens=time(12), closes=time(0)) for d in range(7)]
        )
    return ids


@pytest.fixture
def new_page(browser: Browser):
    """Pages in separate browser contexts (the diner's, the kitchen's), closed at the end so
    their polling stops before the database goes away."""
    contexts = []

    def make() -> Page:
        context = browser.new_context()
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def storefront_url(live_server, slug: str) -> str:
    return live_server.url.replace("://localhost", f"://{slug}.localhost")


def order_as_a_diner(page: Page, storefront: str) -> str:
    page.goto(f"{storefront}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ours")
    page.get_by_role("link", name="Choose options for Burger").click()
    page.get_by_label("Large").check()
    page.get_by_label("Cheese").check()
    page.locator("#add-to-cart").click()
    expect(page).to_have_url(f"{storefront}/cart")
    page.get_by_role("link", name="Go to checkout").click()
    expect(page.locator("#scheduled_for")).to_have_value("asap")
    page.get_by_label("Name").fill("Ada Diner")
    page.get_by_label("Email (for your receipt)").fill("ada@example.com")
    expect(page.locator("#marketing_consent")).not_to_be_checked()
    page.locator("#place-order").click()
    expect(page.locator("#order-status")).to_have_text("Placed")
    return page.url


def test_a_diner_orders_and_watches_the_kitchen_work(new_page, base_url, live_server, shop):
    diner = new_page()
    diner.add_init_script(WATCH_CSP)
    storefront = storefront_url(live_server, "ours")
    status_page = order_as_a_diner(diner, storefront)

    ours = Restaurant.objects.get(slug="ours")
    with tenant_context(ours):
        order = Order.objects.get()
    assert status_page.endswith(f"/orders/{order.public_id}")
    assert (order.status, order.total) == (Status.PLACED, 1200 + 300 + 150)

    kitchen = new_page()
    kitchen.add_init_script(WATCH_CSP)
    kitchen.goto(f"{base_url}/dev/sign-in")
    kitchen.get_by_test_id("sign-in-ours-kitchen").click()
    kitchen.goto(f"{base_url}/dashboard/kitchen")
    ticket = kitchen.get_by_test_id("ticket").filter(has_text=f"#{order.number}")
    expect(ticket).to_contain_text("Burger")
    expect(ticket).to_contain_text("Size: Large")
    expect(ticket).not_to_contain_text("ada@example.com")
    expect(ticket).not_to_contain_text("Ada Diner")

    for label in ("Accepted", "Preparing", "Ready"):
        kitchen.get_by_test_id("ticket").filter(has_text=f"#{order.number}").get_by_test_id(
            "next-step"
        ).click()
        expect(
            kitchen.get_by_test_id("ticket").filter(has_text=f"#{order.number}")
        ).to_contain_text(label)
        # The diner's page was not reloaded: it polls the status.
        expect(diner.locator("#order-status")).to_have_text(label, timeout=POLL_TIMEOUT_MS)
        expect(diner.locator(f'[data-step="{label.lower()}"]')).to_have_attribute(
            "aria-current", "step"
        )

    kitchen.get_by_test_id("ticket").filter(has_text=f"#{order.number}").get_by_test_id(
        "next-step"
    ).click()
    expect(kitchen.get_by_test_id("queue-empty")).to_be_visible()
    expect(diner.locator("#order-status")).to_have_text("Completed", timeout=POLL_TIMEOUT_MS)

    assert diner.evaluate("window.__cspViolations") == []
    assert kitchen.evaluate("window.__cspViolations") == []
    subjects = [message.subject for message in mail.outbox]
    placed = f"Your order #{order.number} at Ours"
    assert subjects == [placed, f"{placed} is ready for pickup"]


def test_another_restaurants_storefront_does_not_show_the_order(new_page, live_server, shop):
    diner = new_page()
    status_page = order_as_a_diner(diner, storefront_url(live_server, "ours"))
    elsewhere = status_page.replace("://ours.localhost", "://theirs.localhost")
    response = diner.goto(elsewhere)
    assert response is not None and response.status == 404
