"""Confirming news from the link in an order email (double opt-in), on a storefront host."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client, override_settings
from django.urls import reverse

from customers.consent import consent_token
from customers.models import Customer
from customers.services import customer_confirm_consent
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import make_shop, open_all_week

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday, inside opening hours
ASKED = NOW - timedelta(days=1)
HOST, THEIR_HOST = "ours.localhost", "theirs.localhost"
DAY = 24 * 3600


def confirm_path(token: str) -> str:
    return reverse("storefront:consent-confirm", args=[token], urlconf="storefront.urls")


@pytest.fixture
def clock():
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        yield


@pytest.fixture
def diner() -> Client:
    return Client(HTTP_HOST=HOST)


def make_customer(restaurant: Restaurant, email: str = "ada@example.com") -> Customer:
    with tenant_context(restaurant):
        return Customer.objects.create(email=email, name="Ada Lovelace", consent_requested_at=ASKED)


@pytest.fixture
def ada(restaurants) -> Customer:
    return make_customer(restaurants[0])


def state(customer: Customer) -> tuple:
    with tenant_context(customer.restaurant):
        row = Customer.objects.get(pk=customer.pk)
    return (row.marketing_consent, row.consent_at, row.consent_source, row.updated_at)


def token_for(customer: Customer, *, age_days: float = 0) -> str:
    """A token as the order email carries it, signed ``age_days`` ago."""
    signed_at = time.time() - age_days * DAY
    with mock.patch("django.core.signing.time.time", return_value=signed_at):
        return consent_token(customer)


class TestTheLink:
    def test_opening_it_says_what_is_agreed_and_changes_nothing(self, ada, diner, clock):
        before = state(ada)
        response = diner.get(confirm_path(token_for(ada)))
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
        html = response.content.decode()
        assert "may email news and offers to <strong>ada@example.com</strong>" in html
        assert "unsubscribe at any time" in html
        form = re.search(r'<form method="post"[^>]*>(.*?)</form>', html, re.S)
        assert form, "confirming takes a POST"
        assert 'name="csrfmiddlewaretoken"' in form.group(1)
        assert "Yes, send me news" in form.group(1)
        assert state(ada) == before
        assert diner.head(confirm_path(token_for(ada))).status_code == 200
        assert state(ada) == before, "a HEAD (link scanners) changes nothing either"

    def test_yes_confirms_consent_from_checkout(self, ada, diner, clock):
        path = confirm_path(token_for(ada))
        response = diner.post(path)
        assert response.status_code == 303 and response["Location"] == path
        consent, consent_at, source, _ = state(ada)
        assert (consent, consent_at, source) == (True, NOW, "checkout")
        html = diner.get(path).content.decode()
        assert "You get news and offers from Ours at ada@example.com." in html
        assert "Yes, send me news" not in html

    def test_confirming_again_changes_nothing(self, ada, diner, clock):
        path = confirm_path(token_for(ada))
        diner.post(path)
        first = state(ada)
        with mock.patch("django.utils.timezone.now", return_value=NOW + timedelta(days=1)):
            assert diner.post(path).status_code == 303
        assert state(ada) == first

    def test_a_post_without_the_pages_csrf_token_is_refused(self, ada, clock):
        browser = Client(HTTP_HOST=HOST, enforce_csrf_checks=True)
        path = confirm_path(token_for(ada))
        before = state(ada)
        assert browser.post(path).status_code == 403
        assert state(ada) == before
        html = browser.get(path).content.decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        assert csrf
        form = {"csrfmiddlewaretoken": csrf.group(1)}
        # A browser names the page's own origin; without it the post is refused too.
        assert browser.post(path, form).status_code == 403
        assert state(ada) == before
        origin = {"Origin": f"http://{HOST}"}
        assert browser.post(path, form, headers=origin).status_code == 303
        assert state(ada)[0] is True

    def test_a_29_day_old_link_still_works(self, ada, diner, clock):
        assert diner.post(confirm_path(token_for(ada, age_days=29))).status_code == 303
        assert state(ada)[0] is True


def tampered(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


class TestABadLink:
    @pytest.mark.parametrize(
        "make_token",
        [
            pytest.param(lambda ada, theirs: token_for(ada, age_days=31), id="expired"),
            pytest.param(lambda ada, theirs: tampered(token_for(ada)), id="tampered"),
            pytest.param(lambda ada, theirs: token_for(theirs), id="another-restaurants"),
            pytest.param(lambda ada, theirs: "not-a-token", id="garbage"),
            pytest.param(lambda ada, theirs: "a" * 2000, id="long"),
            pytest.param(lambda ada, theirs: "x:y:z", id="separators"),
        ],
    )
    def test_is_a_friendly_400_that_changes_nothing(self, ada, restaurants, diner, make_token):
        theirs = make_customer(restaurants[1])
        token = make_token(ada, theirs)
        before = (state(ada), state(theirs))
        for response in (diner.get(confirm_path(token)), diner.post(confirm_path(token))):
            assert response.status_code == 400
            assert response["Content-Type"].startswith("text/html")
            html = response.content.decode()
            assert "This link does not work" in html and "Nothing has changed." in html
            assert "Yes, send me news" not in html
        assert (state(ada), state(theirs)) == before

    def test_a_token_names_its_restaurant(self, ada, restaurants, diner):
        """Ada's id and email, but signed for their restaurant: refused on ours too."""
        forged = Customer(pk=ada.pk, email=ada.email, restaurant_id=restaurants[1].pk)
        assert diner.post(confirm_path(consent_token(forged))).status_code == 400
        assert state(ada)[0] is False

    def test_ours_on_their_host_reaches_no_one(self, ada, restaurants):
        theirs = make_customer(restaurants[1])
        before = (state(ada), state(theirs))
        response = Client(HTTP_HOST=THEIR_HOST).post(confirm_path(token_for(ada)))
        assert response.status_code == 400
        assert (state(ada), state(theirs)) == before

    def test_a_changed_email_voids_the_link(self, ada, diner):
        token = token_for(ada)
        with tenant_context(ada.restaurant):
            Customer.objects.filter(pk=ada.pk).update(email="new@example.com")
        assert diner.post(confirm_path(token)).status_code == 400
        assert state(ada)[0] is False

    def test_a_deleted_customer_is_a_400(self, ada, diner):
        token = token_for(ada)
        with tenant_context(ada.restaurant):
            Customer.objects.filter(pk=ada.pk).delete()
        assert diner.get(confirm_path(token)).status_code == 400


class TestWhereItAnswers:
    @pytest.mark.parametrize("host", ["localhost", "testserver", "nobody.localhost"])
    def test_only_on_a_restaurants_storefront_host(self, ada, host):
        path = confirm_path(token_for(ada))
        before = state(ada)
        client = Client(HTTP_HOST=host)
        assert client.get(path).status_code == 404
        assert client.post(path).status_code == 404
        assert state(ada) == before

    def test_not_on_a_suspended_restaurants_host(self, ada, restaurants, diner):
        Restaurant.objects.filter(pk=restaurants[0].pk).update(status=Restaurant.Status.SUSPENDED)
        assert diner.post(confirm_path(token_for(ada))).status_code == 404
        assert state(ada)[0] is False

    @override_settings(CONSENT_CONFIRM_RATE="2/m")
    def test_confirming_is_rate_limited_per_ip(self, ada, diner, frozen_ratelimit_clock):
        assert [diner.post(confirm_path("guess")).status_code for _ in range(2)] == [400, 400]
        response = diner.post(confirm_path(token_for(ada)))
        assert response.status_code == 429
        assert int(response["Retry-After"]) > 0
        assert state(ada)[0] is False
        assert diner.get(confirm_path(token_for(ada))).status_code == 200, "reading is free"
        other = Client(HTTP_HOST=HOST, REMOTE_ADDR="10.0.0.9")
        assert other.post(confirm_path(token_for(ada))).status_code == 303
        assert state(ada)[0] is True


def test_from_checkout_to_consent(restaurants, diner, clock, django_capture_on_commit_callbacks):
    """The diner ticks the box, gets the link by email, opens it and says yes."""
    ours = restaurants[0]
    open_all_week(ours)
    ids = make_shop(ours)
    diner.post(reverse("storefront:item", args=[ids["fries"]], urlconf="storefront.urls"),
               {"quantity": "1"})  # fmt: skip
    checkout = reverse("storefront:checkout", urlconf="storefront.urls")
    html = diner.get(checkout).content.decode()
    fields = {
        name: match.group(1)
        for name in ("expected_total", "checkout_token")
        if (match := re.search(rf'name="{name}"[^>]*value="([^"]*)"', html))
    }
    assert len(fields) == 2
    with django_capture_on_commit_callbacks(execute=True):
        response = diner.post(checkout, {
            **fields, "fulfilment": "pickup", "scheduled_for": "asap", "tip": "0",
            "name": "Ada Lovelace", "email": "ada@example.com", "payment_method": "in_person",
            "marketing_consent": "on", "action": "place",
        })  # fmt: skip
    assert response.status_code == 303
    with tenant_context(ours):
        customer = Customer.objects.get()
    assert (customer.marketing_consent, customer.consent_requested_at) == (False, NOW)
    (email,) = mail.outbox
    link = re.search(r"Confirm that you'd like news from Ours: (\S+)", str(email.body))
    assert link
    path = urlsplit(link.group(1)).path
    assert diner.get(path).status_code == 200
    assert state(customer)[0] is False
    assert diner.post(path).status_code == 303
    assert state(customer)[:3] == (True, NOW, "checkout")


def test_the_service_keeps_the_first_confirmation(ada):
    with tenant_context(ada.restaurant):
        customer_confirm_consent(customer_id=ada.pk, now=NOW)
        again = customer_confirm_consent(customer_id=ada.pk, now=NOW + timedelta(days=3))
    assert (again.marketing_consent, again.consent_at) == (True, NOW)
