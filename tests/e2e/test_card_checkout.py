"""A diner pays by card: checkout up to where Stripe's frame takes over, under the payment
page's own CSP; then Stripe's signed webhook places the order and the kitchen sees it.

No network: Stripe's API is the loopback stand-in, and ``https://js.stripe.com`` is answered
by the browser context with a small stand-in for Stripe.js that records how it was used.
"""

import json
from datetime import time
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, Route, expect

from orders.models import Order, Status
from payments.models import AccountRoute, Payment, StripeAccount
from tenants.context import tenant_context
from tenants.models import OpeningHours, Restaurant
from tests.e2e.conftest import WATCH_CSP
from tests.factories import make_shop
from tests.support.stripe_server import event, pay, sign_event

pytestmark = pytest.mark.django_db(transaction=True)

POLL_TIMEOUT_MS = 15_000
STRIPE_JS = "https://js.stripe.com/v3"
FRAME = "https://js.stripe.com/v3/elements-inner-payment.html"

# Stripe.js as far as the page uses it: the Payment Element mounts a frame from
# js.stripe.com (so frame-src is exercised) and confirmPayment reports a decline.
STRIPE_JS_STAND_IN = f"""
window.__stripe = {{}};
window.Stripe = function (key, options) {{
  window.__stripe.key = key;
  window.__stripe.options = options;
  return {{
    elements: function (options) {{
      window.__stripe.elements = options;
      return {{
        create: function (type) {{
          window.__stripe.type = type;
          var handlers = {{}};
          return {{
            on: function (name, handler) {{ handlers[name] = handler; }},
            mount: function (selector) {{
              var frame = document.createElement("iframe");
              frame.src = "{FRAME}";
              frame.title = "Secure payment input frame";
              frame.addEventListener("load", function () {{ handlers.ready && handlers.ready(); }});
              document.querySelector(selector).appendChild(frame);
            }},
          }};
        }},
      }};
    }},
    confirmPayment: function (params) {{
      window.__stripe.confirm = params.confirmParams;
      return Promise.resolve({{
        error: {{ type: "card_error", message: "Your card was declined." }},
      }});
    }},
  }};
}};
"""


@pytest.fixture
def card_shop(roster, restaurants, stripe_stand_in):
    """Ours takes cards (charges enabled on its connected account) around the clock."""
    ours, theirs = restaurants
    ids = make_shop(ours)
    make_shop(theirs)
    Restaurant.objects.filter(pk=ours.pk).update(prep_time_minutes=0)
    with tenant_context(ours):
        OpeningHours.objects.bulk_create(
            [OpeningHours(weekday=d, opens=time(0), closes=time(12)) for d in range(7)]
            + [OpeningHours(weekday=d, opens=time(12), closes=time(0)) for d in range(7)]
        )
        StripeAccount.objects.create(
            account_id="acct_ours", details_submitted=True, charges_enabled=True
        )
        AccountRoute.objects.create(account_id="acct_ours", restaurant=ours)
    return ids


@pytest.fixture
def new_page(browser: Browser):
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


def answer_for_stripe(route: Route) -> None:
    if route.request.url == STRIPE_JS:
        route.fulfill(status=200, content_type="text/javascript", body=STRIPE_JS_STAND_IN)
    elif route.request.url == FRAME:
        route.fulfill(status=200, content_type="text/html", body="<!doctype html><p>card</p>")
    else:
        route.fulfill(status=404, body="")


def test_a_diner_pays_by_card_and_the_webhook_sends_it_to_the_kitchen(
    new_page, base_url, live_server, card_shop, stripe_stand_in
):
    diner = new_page()
    diner.add_init_script(WATCH_CSP)
    diner.route("https://js.stripe.com/**", answer_for_stripe)
    outside: list[tuple[str, str]] = []

    def watch(request: Request) -> None:
        address = urlsplit(request.url)
        if address.scheme in ("http", "https") and address.hostname != "ours.localhost":
            outside.append((request.resource_type, request.url))

    diner.on("request", watch)
    storefront = storefront_url(live_server, "ours")

    diner.goto(f"{storefront}/")
    diner.get_by_role("link", name="Choose options for Burger").click()
    diner.get_by_label("Large").check()
    diner.locator("#add-to-cart").click()
    diner.get_by_role("link", name="Go to checkout").click()
    diner.get_by_label("Name").fill("Ada Diner")
    diner.get_by_label("Email (for your receipt)").fill("ada@example.com")
    diner.get_by_label("Card", exact=True).check()
    diner.locator("#place-order").click()

    ours = Restaurant.objects.get(slug="ours")
    with tenant_context(ours):
        order = Order.objects.get()
        payment = Payment.objects.get(order=order)
    pay_page = f"{storefront}/orders/{order.public_id}/pay"
    expect(diner).to_have_url(pay_page)
    expect(diner.get_by_role("heading", level=1)).to_have_text(f"Pay for order {order.number}")
    expect(diner.locator("#pay-button")).to_be_enabled()
    assert order.status == Status.PENDING_PAYMENT

    # Stripe.js was given the connected account and this order's intent, nothing of ours.
    stripe = diner.evaluate("window.__stripe")
    assert stripe["key"] == "pk_test_standin"
    assert stripe["options"] == {"stripeAccount": "acct_ours"}
    assert stripe["elements"] == {"clientSecret": payment.client_secret}
    assert stripe["type"] == "payment"
    assert diner.locator("input").count() == 0  # every card field is in Stripe's frame

    # A decline is announced; the return address is ours.
    diner.locator("#pay-button").click()
    expect(diner.locator("#payment-message")).to_have_text("Your card was declined.")
    expect(diner.locator("#payment-message")).to_have_attribute("aria-live", "assertive")
    confirm = diner.evaluate("window.__stripe.confirm")
    assert confirm == {"return_url": f"{storefront}/orders/{order.public_id}/return"}

    assert diner.evaluate("window.__cspViolations") == []
    scripts = [url for kind, url in outside if kind == "script"]
    assert scripts == [STRIPE_JS]
    assert {url for _, url in outside} == {STRIPE_JS, FRAME}

    # The order waits for its payment: the status page says so, the kitchen does not see it.
    diner.get_by_role("link", name="See your order").click()
    expect(diner.locator("#order-status")).to_have_text("Waiting for payment")
    expect(diner.locator("#pay-link")).to_be_visible()

    kitchen = new_page()
    kitchen.add_init_script(WATCH_CSP)
    kitchen.goto(f"{base_url}/dev/sign-in")
    kitchen.get_by_test_id("sign-in-ours-kitchen").click()
    kitchen.goto(f"{base_url}/dashboard/kitchen")
    expect(kitchen.get_by_test_id("queue-empty")).to_be_visible()
    with tenant_context(ours):
        assert Order.objects.get().status == Status.PENDING_PAYMENT

    # The diner's card went through at Stripe; Stripe tells the Connect endpoint.
    intent = pay(stripe_stand_in, payment.payment_intent_id)
    payload = json.dumps(event("payment_intent.succeeded", intent, account="acct_ours")).encode()
    delivered = kitchen.request.post(
        f"{base_url}/webhooks/stripe/connect",
        data=payload,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": sign_event(payload, "whsec_connect_test"),
        },
    )
    assert delivered.status == 200

    with tenant_context(ours):
        assert Order.objects.get().status == Status.PLACED
    kitchen.goto(f"{base_url}/dashboard/kitchen")
    ticket = kitchen.get_by_test_id("ticket").filter(has_text=f"#{order.number}")
    expect(ticket).to_contain_text("Burger")
    expect(ticket).to_contain_text("Size: Large")

    # The status page follows by itself: placed, and nothing left to pay.
    expect(diner.locator("#order-status")).to_have_text("Placed", timeout=POLL_TIMEOUT_MS)
    expect(diner.locator("#pay-link")).to_be_hidden()
    assert diner.evaluate("window.__cspViolations") == []
    assert kitchen.evaluate("window.__cspViolations") == []

    # The pay page of a placed order is its status page.
    diner.goto(pay_page)
    expect(diner).to_have_url(f"{storefront}/orders/{order.public_id}")
    expect(diner.locator("#order-status")).to_have_text("Placed")
