"""Checkout by card on the storefront: the PaymentIntent on the restaurant's connected
account, the payment page (Stripe's Payment Element under its own CSP) and Stripe's return,
against the Stripe stand-in."""

from __future__ import annotations

import json
import re
from datetime import time

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from orders.checkout_request import parse_checkout
from orders.models import Order, Status, StatusChange
from orders.placement import place_order
from payments.models import AccountRoute, Payment, StripeAccount
from payments.services import application_fee
from tenants.context import tenant_context
from tenants.models import OpeningHours, Restaurant
from tests.factories import make_shop, token_for
from tests.support.stripe_server import pay

pytestmark = pytest.mark.django_db

INTENTS = "/v1/payment_intents"
ERROR_KEYS = {"type", "code", "detail", "attr"}
# Per Stripe's CSP guidance for Stripe.js and the Payment Element; the rest is the site's.
PAY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "'nonce-{nonce}'", "https://js.stripe.com", "https://*.js.stripe.com"],
    "style-src": ["'self'", "'nonce-{nonce}'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'", "https://api.stripe.com"],
    "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def always_open(restaurant: Restaurant) -> None:
    """Open around the clock with no preparation time: ASAP is offered whenever tests run."""
    Restaurant.objects.filter(pk=restaurant.pk).update(prep_time_minutes=0)
    with tenant_context(restaurant):
        OpeningHours.objects.bulk_create(
            [OpeningHours(weekday=d, opens=time(0), closes=time(12)) for d in range(7)]
            + [OpeningHours(weekday=d, opens=time(12), closes=time(0)) for d in range(7)]
        )


def connect(restaurant: Restaurant, account_id: str, *, charges_enabled: bool = True) -> None:
    with tenant_context(restaurant):
        StripeAccount.objects.create(
            account_id=account_id,
            details_submitted=True,
            charges_enabled=charges_enabled,
            payouts_enabled=charges_enabled,
        )
        AccountRoute.objects.create(account_id=account_id, restaurant=restaurant)


@pytest.fixture
def shops(restaurants, roster, stripe_stand_in):
    ours, theirs = restaurants
    ids = {}
    for restaurant in restaurants:
        always_open(restaurant)
        ids[restaurant.slug] = make_shop(restaurant)
    connect(ours, "acct_ours")
    connect(theirs, "acct_theirs")
    return ids


@pytest.fixture
def ours(restaurants) -> Restaurant:
    return Restaurant.objects.get(pk=restaurants[0].pk)


@pytest.fixture
def diner() -> Client:
    return Client(HTTP_HOST="ours.localhost", raise_request_exception=False)


def page_url(name: str, *args) -> str:
    return reverse(f"storefront:{name}", args=args, urlconf="storefront.urls")


def api_url(name: str, **kwargs) -> str:
    return reverse(name, urlconf="storefront.urls", kwargs=kwargs or None)


def form_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html)
    assert match, f"no {name} in the form"
    return match.group(1)


def fill_cart(client: Client, ids: dict) -> None:
    html = client.get(page_url("item", ids["burger"])).content.decode()
    size_group = re.search(r'name="(group-\d+)"[^>]*value="' + str(ids["large"]) + '"', html)
    assert size_group, "no size choice on the item page"
    response = client.post(
        page_url("item", ids["burger"]), {"quantity": "1", size_group.group(1): ids["large"]}
    )
    assert response.status_code == 303


def checkout_form(client: Client, **fields) -> dict:
    html = client.get(page_url("checkout")).content.decode()
    data = {
        "expected_total": form_value(html, "expected_total"),
        "checkout_token": form_value(html, "checkout_token"),
        "fulfilment": "pickup",
        "scheduled_for": "asap",
        "tip": "0",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "payment_method": "card",
        "action": "place",
    }
    data.update(fields)
    return data


def order_by_card(client: Client, ids: dict, **fields):
    fill_cart(client, ids)
    return client.post(page_url("checkout"), checkout_form(client, **fields))


def only_order(restaurant: Restaurant) -> Order:
    with tenant_context(restaurant):
        return Order.objects.get()


def payment_of(order: Order) -> Payment:
    with tenant_context(order.restaurant):
        return Payment.objects.get(order=order)


def policy(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in directives, f"{name} twice"
        directives[name] = sources
    return directives


def nonce_of(header: str) -> str:
    match = re.search(r"'nonce-([^']+)'", header)
    assert match, "no nonce in the policy"
    return match.group(1)


def in_kitchen_queue(order: Order, kitchen) -> bool:
    """Whether the order is on the kitchen's queue, as the kitchen's dashboard shows it."""
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token_for(kitchen)
    response = client.get("/dashboard/kitchen")
    assert response.status_code == 200
    return f'data-order-id="{order.pk}"' in response.content.decode()


def stripe_down(stand_in) -> None:
    """Every request fails until ``stand_in.fail_next`` is cleared (the SDK retries)."""
    for _ in range(10):
        stand_in.fail(500)


def place_in_person(restaurant: Restaurant, ids: dict) -> Order:
    body = {
        "lines": [{"item_id": ids["fries"], "quantity": 1}],
        "name": "Grace",
        "email": "grace@example.com",
    }
    with tenant_context(restaurant):
        order, _ = place_order(
            restaurant=restaurant,
            request=parse_checkout(body, restaurant.zone),
            idempotency_key=None,
        )
    return order


# --- Placing a card order ------------------------------------------------------------------


class TestPlacing:
    def test_checkout_offers_card_when_the_restaurant_takes_cards(self, shops, diner):
        fill_cart(diner, shops["ours"])
        html = diner.get(page_url("checkout")).content.decode()
        assert 'id="payment-card" value="card"' in html
        assert '<label for="payment-card">Card</label>' in html

    def test_one_intent_on_the_connected_account_for_the_server_total(
        self, shops, ours, diner, stripe_stand_in
    ):
        forged = {"amount": "1", "total": "1", "application_fee_amount": "0", "currency": "usd"}
        response = order_by_card(diner, shops["ours"], **forged)
        order = only_order(ours)
        assert response.status_code == 303
        assert response["Location"] == page_url("pay", order.public_id)
        assert order.status == Status.PENDING_PAYMENT
        assert order.total == 1200 + 300

        [intent] = stripe_stand_in.posts(INTENTS)
        assert intent.account == "acct_ours"
        assert intent.form["amount"] == str(order.total)
        assert intent.form["application_fee_amount"] == str(application_fee(order.total))
        assert application_fee(order.total) > 0
        assert intent.form["currency"] == order.currency.lower() == "eur"
        assert intent.form["metadata[order_id]"] == str(order.pk)
        assert intent.form["metadata[restaurant_id]"] == str(ours.pk)
        assert intent.idempotency_key == f"payment-intent-{order.public_id}"

        payment = payment_of(order)
        assert (payment.amount, payment.account_id) == (order.total, "acct_ours")
        assert payment.status == Payment.Status.REQUIRES_PAYMENT

    def test_a_total_the_server_does_not_agree_with_creates_nothing(
        self, shops, ours, diner, stripe_stand_in
    ):
        response = order_by_card(diner, shops["ours"], expected_total="1")
        assert response.status_code == 409
        with tenant_context(ours):
            assert not Order.objects.exists()
        assert stripe_stand_in.posts(INTENTS) == []

    def test_the_order_waits_for_payment_outside_the_kitchen_queue(
        self, shops, ours, roster, diner
    ):
        order_by_card(diner, shops["ours"])
        order = only_order(ours)
        assert order.status == Status.PENDING_PAYMENT
        assert not in_kitchen_queue(order, roster[("ours", "kitchen")])

        status_page = diner.get(page_url("order", order.public_id)).content.decode()
        assert "Waiting for payment" in status_page
        assert f'href="{page_url("pay", order.public_id)}"' in status_page

    def test_the_cart_is_emptied_and_sending_the_form_again_makes_no_second_order(
        self, shops, ours, diner, stripe_stand_in
    ):
        fill_cart(diner, shops["ours"])
        data = checkout_form(diner)
        assert diner.post(page_url("checkout"), data).status_code == 303
        again = diner.post(page_url("checkout"), data)
        order = only_order(ours)
        assert again.status_code == 303
        assert again["Location"] == page_url("order", order.public_id)
        assert len(stripe_stand_in.posts(INTENTS)) == 1


# --- The payment page ----------------------------------------------------------------------


class TestPayPage:
    def test_mounts_stripe_with_the_intent_and_the_connected_account(
        self, shops, ours, diner, stripe_stand_in
    ):
        order_by_card(diner, shops["ours"])
        order = only_order(ours)
        response = diner.get(page_url("pay", order.public_id))
        html = response.content.decode()
        intent = stripe_stand_in.objects[payment_of(order).payment_intent_id]
        assert response.status_code == 200
        assert response["Cache-Control"] == "private, no-store"
        assert f'data-client-secret="{intent["client_secret"]}"' in html
        assert 'data-publishable-key="pk_test_standin"' in html
        assert 'data-stripe-account="acct_ours"' in html
        return_url = f"http://ours.localhost{page_url('pay-return', order.public_id)}"
        assert f'data-return-url="{return_url}"' in html
        assert 'aria-live="assertive"' in html

    def test_reloading_or_retrying_creates_no_second_intent(
        self, shops, ours, diner, stripe_stand_in
    ):
        order_by_card(diner, shops["ours"])
        order = only_order(ours)
        first = diner.get(page_url("pay", order.public_id)).content.decode()
        second = diner.get(page_url("pay", order.public_id)).content.decode()
        retried = diner.post(page_url("pay", order.public_id))
        assert retried.status_code == 303
        third = diner.get(page_url("pay", order.public_id)).content.decode()
        secrets = {form_value_attr(page, "data-client-secret") for page in (first, second, third)}
        assert len(secrets) == 1
        assert len(stripe_stand_in.posts(INTENTS)) == 1
        with tenant_context(ours):
            assert Payment.objects.count() == 1

    def test_the_policy_lets_in_exactly_what_stripe_needs(self, shops, ours, diner):
        order_by_card(diner, shops["ours"])
        order = only_order(ours)
        response = diner.get(page_url("pay", order.public_id))
        header = response["Content-Security-Policy"]
        nonce = nonce_of(header)
        expected = {
            name: [source.replace("{nonce}", nonce) for source in sources]
            for name, sources in PAY_POLICY.items()
        }
        got = policy(header)
        assert got.keys() == expected.keys()
        for name, sources in expected.items():
            assert got[name] == sources, name
        html = response.content.decode()
        assert f'<script src="https://js.stripe.com/v3" nonce="{nonce}"' in html

    def test_the_sites_other_origins_stay_off_the_payment_page(self, shops, ours, diner):
        """In production the site's policy (SECURE_CSP) also lets Clerk in, for signing in;
        the payment page's policy is its own and holds none of it, however the site's grows
        (checked on the module as it is built under such settings, and on the page)."""
        import importlib

        from django.conf import settings

        from storefront import payment_views

        clerk = "https://clerk.nordkestrel.example"
        production_like = {
            **{name: [*sources, clerk] for name, sources in settings.SECURE_CSP.items()},
            "frame-src": [clerk],
            "worker-src": ["'self'", "blob:"],
        }
        order_by_card(diner, shops["ours"])
        order = only_order(ours)
        try:
            with override_settings(SECURE_CSP=production_like):
                built = importlib.reload(payment_views).PAY_CSP
                assert clerk in diner.get("/")["Content-Security-Policy"]
                header = diner.get(page_url("pay", order.public_id))["Content-Security-Policy"]
        finally:
            importlib.reload(payment_views)  # as built under the test settings again
        assert clerk not in json.dumps(built)
        assert "worker-src" not in built
        assert clerk not in header
        assert set(policy(header)) == set(PAY_POLICY)

    def test_no_other_page_lets_stripe_in(self, shops, ours, diner):
        order_by_card(diner, shops["ours"])
        order = only_order(ours)
        fill_cart(diner, shops["ours"])
        for path in (
            "/",
            page_url("cart"),
            page_url("checkout"),
            page_url("order", order.public_id),
        ):
            response = diner.get(path)
            assert response.status_code == 200, path
            header = response["Content-Security-Policy"]
            assert "stripe" not in header, path
            assert "frame-src" not in policy(header), path

    def test_no_card_field_of_ours_and_one_external_script(self, shops, ours, diner):
        order_by_card(diner, shops["ours"])
        order = only_order(ours)
        html = diner.get(page_url("pay", order.public_id)).content.decode()
        inputs = re.findall(r"<input\b[^>]*>", html, re.I)
        for tag in inputs:
            for word in ("card", "cvc", "cvv", "expiry", "exp-", "cc-number"):
                assert word not in tag.lower(), tag
        assert 'autocomplete="cc-' not in html
        scripts = re.findall(r"<script\b([^>]*)>", html, re.I)
        sources = [re.search(r'src="([^"]+)"', attrs) for attrs in scripts]
        assert all(sources), "every script is a file (no inline code)"
        external = [s.group(1) for s in sources if s and not s.group(1).startswith("/")]
        assert external == ["https://js.stripe.com/v3"]
        assert '<div id="payment-element"></div>' in html

    def test_the_checkout_page_has_no_card_field_either(self, shops, diner):
        fill_cart(diner, shops["ours"])
        html = diner.get(page_url("checkout")).content.decode()
        for word in ("cvc", "cvv", "expiry", "cc-number", 'autocomplete="cc-'):
            assert word not in html
        assert "js.stripe.com" not in html

    def test_a_placed_order_goes_to_its_status_page(self, shops, ours, diner, stripe_stand_in):
        order_by_card(diner, shops["ours"])
        order = only_order(ours)
        pay(stripe_stand_in, payment_of(order).payment_intent_id)
        diner.get(page_url("pay-return", order.public_id))
        response = diner.get(page_url("pay", order.public_id))
        assert response.status_code == 302
        assert response["Location"] == page_url("order", order.public_id)
        assert diner.post(page_url("pay", order.public_id)).status_code == 303
        assert len(stripe_stand_in.posts(INTENTS)) == 1

    def test_not_a_card_order_or_another_restaurants_is_404(self, shops, ours, restaurants, diner):
        in_person = place_in_person(ours, shops["ours"])
        assert diner.get(page_url("pay", in_person.public_id)).status_code == 404
        assert diner.post(page_url("pay", in_person.public_id)).status_code == 404
        assert diner.get(page_url("pay-return", in_person.public_id)).status_code == 404

        order_by_card(diner, shops["ours"])
        order = only_order_by_card(ours)
        elsewhere = Client(HTTP_HOST="theirs.localhost", raise_request_exception=False)
        assert elsewhere.get(page_url("pay", order.public_id)).status_code == 404
        assert elsewhere.post(page_url("pay", order.public_id)).status_code == 404
        assert elsewhere.get(page_url("pay-return", order.public_id)).status_code == 404
        assert diner.get(page_url("pay", "4d9b5b7e-1111-4a57-9fd4-0b8f3c0f0a11")).status_code == 404


def form_value_attr(html: str, name: str) -> str:
    match = re.search(rf'{name}="([^"]*)"', html)
    assert match, f"no {name} on the page"
    return match.group(1)


def only_order_by_card(restaurant: Restaurant) -> Order:
    with tenant_context(restaurant):
        return Order.objects.get(payment_method="card")


# --- Stripe's return -----------------------------------------------------------------------


class TestReturn:
    def test_after_paying_the_order_is_placed_once(
        self, shops, ours, roster, diner, stripe_stand_in
    ):
        order_by_card(diner, shops["ours"])
        order = only_order(ours)
        intent_id = payment_of(order).payment_intent_id
        pay(stripe_stand_in, intent_id)

        response = diner.get(page_url("pay-return", order.public_id))
        assert response.status_code == 302
        assert response["Location"] == page_url("order", order.public_id)
        again = diner.get(page_url("pay-return", order.public_id))
        assert again["Location"] == page_url("order", order.public_id)

        order = only_order(ours)
        assert order.status == Status.PLACED
        with tenant_context(ours):
            placed = StatusChange.objects.filter(order=order, to_status=Status.PLACED)
            assert placed.count() == 1
        assert payment_of(order).status == Payment.Status.SUCCEEDED
        retrieved = [r for r in stripe_stand_in.requests if r.method == "GET"]
        assert [(r.path, r.account) for r in retrieved] == [(f"{INTENTS}/{intent_id}", "acct_ours")]
        assert in_kitchen_queue(order, roster[("ours", "kitchen")])
        status_page = diner.get(page_url("order", order.public_id)).content.decode()
        assert '<strong id="order-status">Placed</strong>' in status_page
        assert "Thank you, your payment went through." in status_page
        assert f'href="{page_url("pay", order.public_id)}"' not in status_page

    def test_before_paying_it_waits_and_says_so(self, shops, ours, diner):
        order_by_card(diner, shops["ours"])
        order = only_order(ours)
        response = diner.get(page_url("pay-return", order.public_id))
        assert response.status_code == 302
        assert response["Location"] == page_url("pay", order.public_id)
        assert only_order(ours).status == Status.PENDING_PAYMENT
        html = diner.get(page_url("pay", order.public_id)).content.decode()
        assert "Your payment did not go through." in html
        assert 'id="payment-form"' in html

    def test_a_forged_return_changes_nothing(self, shops, ours, diner, stripe_stand_in):
        order_by_card(diner, shops["ours"])
        order = only_order(ours)
        # Another order of ours is paid; its intent is named in the forged return.
        other = Client(HTTP_HOST="ours.localhost", raise_request_exception=False)
        order_by_card(other, shops["ours"], email="grace@example.com")
        with tenant_context(ours):
            paid = Order.objects.exclude(pk=order.pk).get()
        paid_intent = pay(stripe_stand_in, payment_of(paid).payment_intent_id)

        for query in (
            {"redirect_status": "succeeded"},
            {
                "payment_intent": paid_intent["id"],
                "payment_intent_client_secret": paid_intent["client_secret"],
                "redirect_status": "succeeded",
            },
        ):
            response = diner.get(page_url("pay-return", order.public_id), query)
            assert response["Location"] == page_url("pay", order.public_id)
        with tenant_context(ours):
            assert Order.objects.get(pk=order.pk).status == Status.PENDING_PAYMENT
            assert Order.objects.get(pk=paid.pk).status == Status.PENDING_PAYMENT
            assert not StatusChange.objects.filter(to_status=Status.PLACED).exists()
        assert payment_of(order).status == Payment.Status.REQUIRES_PAYMENT

    def test_processing_goes_to_the_status_page_still_waiting(
        self, shops, ours, diner, stripe_stand_in
    ):
        order_by_card(diner, shops["ours"])
        order = only_order(ours)
        stripe_stand_in.set(payment_of(order).payment_intent_id, status="processing")
        response = diner.get(page_url("pay-return", order.public_id))
        assert response["Location"] == page_url("order", order.public_id)
        assert only_order(ours).status == Status.PENDING_PAYMENT
        html = diner.get(page_url("pay", order.public_id)).content.decode()
        assert "Your payment is being processed." in html
        assert "js.stripe.com" not in html

    def test_stripe_unreachable_at_the_return_is_no_error(
        self, shops, ours, diner, stripe_stand_in
    ):
        order_by_card(diner, shops["ours"])
        order = only_order(ours)
        stripe_down(stripe_stand_in)
        response = diner.get(page_url("pay-return", order.public_id))
        stripe_stand_in.fail_next.clear()
        assert response.status_code == 302
        assert response["Location"] == page_url("order", order.public_id)
        html = diner.get(response["Location"]).content.decode()
        assert "We could not confirm your payment" in html
        assert "Waiting for payment" in html

    @override_settings(CHECKOUT_RATE="2/m")
    def test_returns_count_as_checkouts_but_reading_the_page_does_not(
        self, shops, ours, diner, frozen_ratelimit_clock
    ):
        order_by_card(diner, shops["ours"])  # one checkout
        order = only_order(ours)
        assert diner.get(page_url("pay-return", order.public_id)).status_code == 302
        assert diner.get(page_url("pay-return", order.public_id)).status_code == 429
        for _ in range(5):
            assert diner.get(page_url("pay", order.public_id)).status_code == 200


# --- No card flow without charges -----------------------------------------------------------


class TestChargesDisabled:
    @pytest.fixture
    def disabled(self, shops, ours):
        with tenant_context(ours):
            StripeAccount.objects.update(charges_enabled=False)
        return shops

    def test_no_card_option(self, disabled, diner):
        fill_cart(diner, disabled["ours"])
        html = diner.get(page_url("checkout")).content.decode()
        assert 'value="card"' not in html
        assert 'id="payment-in_person"' in html

    def test_a_forced_card_checkout_is_refused(self, disabled, ours, diner, stripe_stand_in):
        response = order_by_card(diner, disabled["ours"])
        assert response.status_code == 400
        assert "That way of paying is not offered here." in response.content.decode()
        with tenant_context(ours):
            assert not Order.objects.exists()
        assert stripe_stand_in.posts(INTENTS) == []

    def test_the_payment_page_of_a_waiting_order_says_so(self, shops, ours, diner, stripe_stand_in):
        order_by_card(diner, shops["ours"])
        order = only_order(ours)
        with tenant_context(ours):
            StripeAccount.objects.update(charges_enabled=False)
        response = diner.get(page_url("pay", order.public_id))
        html = response.content.decode()
        assert "Ours cannot take card payments right now" in html
        assert "js.stripe.com" not in html and "data-client-secret" not in html
        assert diner.post(page_url("pay", order.public_id)).status_code == 409

    def test_nothing_offered_without_stripe_configured(self, shops, ours, diner, settings):
        settings.STRIPE_SECRET_KEY = ""
        fill_cart(diner, shops["ours"])
        assert 'value="card"' not in diner.get(page_url("checkout")).content.decode()


# --- Stripe down when the payment starts ----------------------------------------------------


class TestStripeDown:
    def test_the_order_waits_and_the_page_offers_a_retry(self, shops, ours, diner, stripe_stand_in):
        stripe_down(stripe_stand_in)
        response = order_by_card(diner, shops["ours"])
        order = only_order(ours)
        assert response.status_code == 303
        assert response["Location"] == page_url("pay", order.public_id)
        assert order.status == Status.PENDING_PAYMENT
        with tenant_context(ours):
            assert not Payment.objects.exists()

        page = diner.get(page_url("pay", order.public_id))
        html = page.content.decode()
        assert page.status_code == 200
        assert "We could not reach our card payment provider." in html
        assert 'id="retry-payment"' in html
        assert "js.stripe.com" not in html

        still_down = diner.post(page_url("pay", order.public_id))
        assert still_down.status_code == 503
        assert 'id="retry-payment"' in still_down.content.decode()

        stripe_stand_in.fail_next.clear()
        retried = diner.post(page_url("pay", order.public_id))
        assert retried.status_code == 303
        html = diner.get(page_url("pay", order.public_id)).content.decode()
        assert 'id="payment-form"' in html
        keys = {r.idempotency_key for r in stripe_stand_in.posts(INTENTS)}
        assert keys == {f"payment-intent-{order.public_id}"}
        with tenant_context(ours):
            assert Payment.objects.count() == 1


# --- The storefront API ---------------------------------------------------------------------


def api_checkout(ids: dict, *, host: str = "ours.localhost", **fields):
    body = {
        "lines": [{"item_id": ids["burger"], "quantity": 1, "modifier_ids": [ids["regular"]]}],
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "payment_method": "card",
        **fields,
    }
    return Client(HTTP_HOST=host).post(
        api_url("api-storefront-checkout"), json.dumps(body), content_type="application/json"
    )


def api_payment(public_id, *, host: str = "ours.localhost"):
    client = Client(HTTP_HOST=host, raise_request_exception=False)
    return client.post(api_url("api-storefront-order-payment", public_id=public_id))


class TestAPI:
    def test_a_card_order_waits_and_its_payment_is_started_once(self, shops, ours, stripe_stand_in):
        placed = api_checkout(shops["ours"])
        assert placed.status_code == 201
        assert placed.json()["status"] == Status.PENDING_PAYMENT
        public_id = placed.json()["public_id"]
        assert stripe_stand_in.posts(INTENTS) == []

        first = api_payment(public_id)
        second = api_payment(public_id)
        assert first.status_code == second.status_code == 200
        assert first["Cache-Control"] == "no-store"
        [intent] = stripe_stand_in.posts(INTENTS)
        order = only_order(ours)
        created = stripe_stand_in.objects[payment_of(order).payment_intent_id]
        assert (
            first.json()
            == second.json()
            == {
                "payment": {
                    "client_secret": created["client_secret"],
                    "publishable_key": "pk_test_standin",
                    "stripe_account": "acct_ours",
                    "amount": order.total,
                    "currency": order.currency,
                }
            }
        )
        assert intent.account == "acct_ours"
        assert intent.form["amount"] == str(order.total)

    def test_other_orders_are_404_and_a_paid_one_409(self, shops, ours, stripe_stand_in):
        in_person = place_in_person(ours, shops["ours"])
        assert api_payment(in_person.public_id).status_code == 404
        public_id = api_checkout(shops["ours"]).json()["public_id"]
        refused = api_payment(public_id, host="theirs.localhost")
        assert refused.status_code == 404
        assert set(refused.json()) == ERROR_KEYS
        assert stripe_stand_in.posts(INTENTS) == []

        api_payment(public_id)
        pay(stripe_stand_in, payment_of(only_order_by_card(ours)).payment_intent_id)
        Client(HTTP_HOST="ours.localhost").get(page_url("pay-return", public_id))
        paid = api_payment(public_id)
        assert paid.status_code == 409
        assert paid.json()["code"] == "not_payable"

    def test_charges_disabled_and_stripe_down(self, shops, ours, stripe_stand_in):
        public_id = api_checkout(shops["ours"]).json()["public_id"]
        stripe_down(stripe_stand_in)
        down = api_payment(public_id)
        stripe_stand_in.fail_next.clear()
        assert down.status_code == 503
        assert set(down.json()) == ERROR_KEYS
        assert down.json()["code"] == "payment_unavailable"

        with tenant_context(ours):
            StripeAccount.objects.update(charges_enabled=False)
        disabled = api_payment(public_id)
        assert disabled.status_code == 409
        assert disabled.json()["code"] == "cards_unavailable"
        refused = api_checkout(shops["ours"])
        assert refused.status_code == 400
        assert refused.json()["attr"] == "payment_method"
