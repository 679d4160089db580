"""Connect onboarding: the Owner connects the restaurant once, continues at Stripe through
Account Links that come back only to our own pages, and everyone allowed sees the status we
store (which only webhooks change)."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from payments.models import AccountRoute, StripeAccount
from staff.roles import Role
from tenants.context import tenant_bypass, tenant_context
from tests.factories import (
    api_client,
    make_restaurant,
    make_staff,
    run_concurrently,
    signed_token,
    token_for,
)
from tests.support.stripe_server import event, sign_event

pytestmark = pytest.mark.django_db

ACCOUNT = reverse("api-payments-account")
LINK = reverse("api-payments-onboarding-link")
PAGE = "/dashboard/payments"
REFRESH = "/dashboard/payments/refresh"
RETURN = "/dashboard/payments/return"
NOT_OWNERS = ["admin", "manager", "cashier", "kitchen"]


def post(client, url, body=None):
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def browser(member, token=None):
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token or token_for(member)
    return client


def bearer(token):
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {token}")


def accounts(restaurant):
    with tenant_context(restaurant):
        return list(StripeAccount.objects.all())


def routes(restaurant):
    """The webhook routes the restaurant sees: its own (row-level security hides the rest)."""
    with tenant_context(restaurant):
        return list(AccountRoute.objects.values_list("account_id", "restaurant_id"))


def connected_events(restaurant):
    with tenant_context(restaurant):
        return list(AuditEvent.objects.filter(action="payments.account_connected"))


def store_account(restaurant, account_id, **flags):
    with tenant_context(restaurant):
        StripeAccount.objects.create(account_id=account_id, **flags)
        AccountRoute.objects.create(account_id=account_id, restaurant=restaurant)


# --- connecting ----------------------------------------------------------------------------


def test_the_owner_connects_the_restaurant(roster, restaurants, stripe_stand_in):
    ours, theirs = restaurants
    owner = roster[("ours", "owner")]
    response = post(api_client(owner), ACCOUNT)
    assert response.status_code == 201, response.content
    body = response.json()

    request = stripe_stand_in.posts("/v1/accounts")
    assert len(request) == 1
    assert request[0].idempotency_key.startswith(f"account-{ours.pk}-")
    assert request[0].form["type"] == "express"
    assert request[0].form["metadata[restaurant_id]"] == str(ours.pk)
    assert request[0].form["email"] == owner.email
    account_id = stripe_stand_in.objects[body["account_id"]]["id"]

    [account] = accounts(ours)
    assert account.account_id == account_id
    assert (account.details_submitted, account.charges_enabled, account.payouts_enabled) == (
        False,
        False,
        False,
    )
    assert routes(ours) == [(account_id, ours.pk)]
    assert accounts(theirs) == []
    assert routes(theirs) == []

    [event] = connected_events(ours)
    assert (event.actor_id, event.target_label) == (owner.pk, account_id)
    assert event.changes == {"account_id": {"before": None, "after": account_id}}
    assert connected_events(theirs) == []

    assert body["connected"] is True
    assert body["charges_enabled"] is False
    assert body["details_submitted"] is False


def test_connecting_again_creates_nothing_new(roster, restaurants, stripe_stand_in):
    ours = restaurants[0]
    client = api_client(roster[("ours", "owner")])
    first = post(client, ACCOUNT)
    again = post(client, ACCOUNT)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["account_id"] == first.json()["account_id"]
    assert len(stripe_stand_in.posts("/v1/accounts")) == 1
    assert len(accounts(ours)) == 1
    assert len(routes(ours)) == 1
    assert len(connected_events(ours)) == 1


def test_each_restaurant_gets_its_own_account(roster, restaurants, stripe_stand_in):
    ours, theirs = restaurants
    mine = post(api_client(roster[("ours", "owner")]), ACCOUNT).json()["account_id"]
    other = post(api_client(roster[("theirs", "owner")]), ACCOUNT).json()["account_id"]
    assert mine != other
    assert [a.account_id for a in accounts(ours)] == [mine]
    assert [a.account_id for a in accounts(theirs)] == [other]
    mine_status = api_client(roster[("ours", "admin")]).get(ACCOUNT).json()
    assert mine_status["account_id"] == mine


@pytest.mark.django_db(transaction=True)
def test_a_double_click_creates_one_account(stripe_stand_in):
    ours = make_restaurant("ours")
    make_restaurant("theirs")
    owner = make_staff(ours, Role.OWNER)

    def connect():
        return post(api_client(owner), ACCOUNT).status_code

    assert sorted(run_concurrently(connect, connect)) == [200, 201]
    assert len(stripe_stand_in.posts("/v1/accounts")) == 1
    assert len(accounts(ours)) == 1
    with tenant_bypass():  # committed: every restaurant's routes
        assert AccountRoute.objects.count() == 1
    assert len(connected_events(ours)) == 1


@pytest.mark.parametrize("role", NOT_OWNERS)
def test_only_the_owner_connects(roster, restaurants, stripe_stand_in, role):
    member = roster[("ours", role)]
    client = api_client(member)
    for url in (ACCOUNT, LINK):
        response = post(client, url)
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
    assert browser(member).post(PAGE).status_code == 403
    assert browser(member).get(REFRESH).status_code == 403
    assert stripe_stand_in.requests == []
    assert accounts(restaurants[0]) == []


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owner_and_admin_see_the_status(roster, stripe_stand_in, role):
    response = api_client(roster[("ours", role)]).get(ACCOUNT)
    assert response.status_code == 200
    assert response.json()["connected"] is False
    page = browser(roster[("ours", role)]).get(PAGE)
    assert page.status_code == 200
    assert b'data-testid="payments-status"' in page.content
    assert (b'data-testid="payments-connect"' in page.content) is (role == "owner")


@pytest.mark.parametrize("role", ["manager", "cashier", "kitchen"])
def test_other_roles_do_not_see_the_status(roster, stripe_stand_in, role):
    assert api_client(roster[("ours", role)]).get(ACCOUNT).status_code == 403
    assert browser(roster[("ours", role)]).get(PAGE).status_code == 403
    assert browser(roster[("ours", role)]).get(RETURN).status_code == 403


def test_the_payments_page_is_in_the_navigation_of_owner_and_admin_only(roster, stripe_stand_in):
    link = f'href="{PAGE}"'.encode()
    for role in ("owner", "admin"):
        assert link in browser(roster[("ours", role)]).get("/dashboard/").content
    for role in ("manager", "cashier", "kitchen"):
        assert link not in browser(roster[("ours", role)]).get("/dashboard/").content


# --- recent second factor ------------------------------------------------------------------


@pytest.fixture
def mfa_required(restaurants):
    ours = restaurants[0]
    ours.require_mfa_for_sensitive_actions = True
    ours.save()
    return ours


@pytest.mark.parametrize("fva", [(0, -1), (3, 11)])
def test_connecting_needs_a_recent_second_factor(roster, mfa_required, stripe_stand_in, fva):
    owner = roster[("ours", "owner")]
    stale = signed_token(owner, fva=fva)
    for url in (ACCOUNT, LINK):
        response = post(bearer(stale), url)
        assert response.status_code == 403
        assert response.json()["code"] == "reverification_required"
    page = browser(owner, stale).post(PAGE)
    assert page.status_code == 403
    assert b"Verify your second factor again" in page.content
    assert stripe_stand_in.requests == []
    assert accounts(mfa_required) == []
    # Reading the status is not sensitive.
    assert bearer(stale).get(ACCOUNT).status_code == 200


def test_a_fresh_second_factor_lets_the_owner_connect(roster, mfa_required, stripe_stand_in):
    fresh = signed_token(roster[("ours", "owner")], fva=(0, 2))
    assert post(bearer(fresh), ACCOUNT).status_code == 201
    assert post(bearer(fresh), LINK).status_code == 200
    assert len(accounts(mfa_required)) == 1


# --- onboarding links ----------------------------------------------------------------------


def test_the_onboarding_link_names_the_account_and_comes_back_to_our_pages(roster, stripe_stand_in):
    client = api_client(roster[("ours", "owner")])
    account_id = post(client, ACCOUNT).json()["account_id"]
    response = post(client, LINK)
    assert response.status_code == 200, response.content
    assert response.json() == {"url": f"https://connect.stripe.test/setup/{account_id}"}
    [request] = stripe_stand_in.posts("/v1/account_links")
    assert request.form == {
        "account": account_id,
        "refresh_url": f"http://testserver{REFRESH}",
        "return_url": f"http://testserver{RETURN}",
        "type": "account_onboarding",
    }
    assert request.idempotency_key.startswith("account-link-")
    # Each link is single-use at Stripe: asking again makes a new one, never a replay.
    post(client, LINK)
    keys = {r.idempotency_key for r in stripe_stand_in.posts("/v1/account_links")}
    assert len(keys) == 2


def test_the_onboarding_link_takes_our_own_https_urls(roster, settings, stripe_stand_in):
    settings.CLERK_AUTHORIZED_PARTIES = ["https://app.nordkestrel.test", "http://plain.test"]
    client = api_client(roster[("ours", "owner")])
    post(client, ACCOUNT)
    body = {
        "refresh_url": "https://app.nordkestrel.test/settings/payments?again=1",
        "return_url": "https://testserver/dashboard/payments/return",
    }
    assert post(client, LINK, body).status_code == 200
    form = stripe_stand_in.posts("/v1/account_links")[-1].form
    assert (form["refresh_url"], form["return_url"]) == (body["refresh_url"], body["return_url"])


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/steal",
        "http://testserver/dashboard/payments/refresh",  # not https
        "http://plain.test/refresh",  # an authorized party, but not https
        "https://testserver.evil.example/",
        "https://testserver@evil.example/",
        "https://evil.example\\@testserver/",
        "https://evil.example/ https://testserver/",
        "//evil.example/refresh",
        "/dashboard/payments/refresh",
        "javascript:alert(1)",
        "https://testserver:99999/",
        "https://",
        "",
        "https://testserver/" + "a" * 2001,
        "https://testserver/settings\ud800",  # a lone surrogate: text nobody can store or send
    ],
)
@pytest.mark.parametrize("field", ["refresh_url", "return_url"])
def test_an_external_or_malformed_url_is_refused(roster, settings, stripe_stand_in, url, field):
    settings.CLERK_AUTHORIZED_PARTIES = ["https://app.nordkestrel.test", "http://plain.test"]
    client = api_client(roster[("ours", "owner")])
    post(client, ACCOUNT)
    response = post(client, LINK, {field: url})
    assert response.status_code == 400, response.content
    assert response.json()["attr"] == field
    assert response.json()["type"] == "validation_error"
    assert stripe_stand_in.posts("/v1/account_links") == []


@pytest.mark.parametrize("body", [{"url": "https://testserver/"}, ["refresh_url"], {"x": 1}])
def test_the_onboarding_link_refuses_other_bodies(roster, stripe_stand_in, body):
    client = api_client(roster[("ours", "owner")])
    post(client, ACCOUNT)
    response = client.post(LINK, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert stripe_stand_in.posts("/v1/account_links") == []


def test_connect_takes_no_fields(roster, restaurants, stripe_stand_in):
    response = post(api_client(roster[("ours", "owner")]), ACCOUNT, {"account_id": "acct_mine"})
    assert response.status_code == 400
    assert response.json()["attr"] == "account_id"
    assert stripe_stand_in.requests == []
    assert accounts(restaurants[0]) == []


def test_no_link_before_connecting(roster, stripe_stand_in):
    response = post(api_client(roster[("ours", "owner")]), LINK)
    assert response.status_code == 409
    assert response.json()["code"] == "not_connected"
    assert stripe_stand_in.requests == []


def test_another_restaurants_account_is_never_linked(roster, restaurants, stripe_stand_in):
    store_account(restaurants[1], "acct_theirs")
    response = post(api_client(roster[("ours", "owner")]), LINK)
    assert response.status_code == 409
    assert stripe_stand_in.requests == []


# --- the dashboard -------------------------------------------------------------------------


def test_the_connect_button_creates_the_account_and_goes_to_stripe(
    roster, restaurants, stripe_stand_in
):
    owner = browser(roster[("ours", "owner")])
    response = owner.post(PAGE)
    assert response.status_code == 303
    [account] = accounts(restaurants[0])
    assert response["Location"] == f"https://connect.stripe.test/setup/{account.account_id}"
    [request] = stripe_stand_in.posts("/v1/account_links")
    assert request.form["return_url"] == f"http://testserver{RETURN}"
    assert request.form["refresh_url"] == f"http://testserver{REFRESH}"
    # "Continue onboarding": the same account, a fresh link.
    assert b"Continue onboarding" in owner.get(PAGE).content
    again = owner.post(PAGE)
    assert again.status_code == 303
    assert again["Location"] == response["Location"]
    assert len(stripe_stand_in.posts("/v1/accounts")) == 1
    assert len(stripe_stand_in.posts("/v1/account_links")) == 2
    assert len(connected_events(restaurants[0])) == 1


def test_the_refresh_page_makes_a_fresh_link(roster, restaurants, stripe_stand_in):
    owner = browser(roster[("ours", "owner")])
    owner.post(PAGE)
    response = owner.get(REFRESH)
    assert response.status_code == 302
    [account] = accounts(restaurants[0])
    assert response["Location"] == f"https://connect.stripe.test/setup/{account.account_id}"
    assert len(stripe_stand_in.posts("/v1/account_links")) == 2
    assert len(stripe_stand_in.posts("/v1/accounts")) == 1


def test_the_refresh_page_never_creates_an_account(roster, restaurants, stripe_stand_in):
    response = browser(roster[("ours", "owner")]).get(REFRESH)
    assert response.status_code == 409
    assert b"Connect the restaurant to Stripe first" in response.content
    assert stripe_stand_in.requests == []
    assert accounts(restaurants[0]) == []


def test_the_refresh_page_needs_a_recent_second_factor(roster, mfa_required, stripe_stand_in):
    owner = roster[("ours", "owner")]
    store_account(mfa_required, "acct_ours")
    response = browser(owner, signed_token(owner, fva=(0, -1))).get(REFRESH)
    assert response.status_code == 403
    assert stripe_stand_in.requests == []
    fresh = browser(owner, signed_token(owner, fva=(0, 1))).get(REFRESH)
    assert fresh.status_code == 302


def test_the_return_page_changes_nothing_whatever_the_query_says(
    roster, restaurants, stripe_stand_in
):
    ours = restaurants[0]
    store_account(ours, "acct_ours", requirements_due=["external_account"])
    before = [
        (a.details_submitted, a.charges_enabled, a.payouts_enabled, a.requirements_due)
        for a in accounts(ours)
    ]
    query = (
        "?charges_enabled=true&details_submitted=true&payouts_enabled=1"
        "&account=acct_evil&requirements_due=&status=complete"
    )
    for role in ("owner", "admin"):
        response = browser(roster[("ours", role)]).get(RETURN + query)
        assert response.status_code == 200
        text = response.content.decode()
        assert 'data-testid="payments-returned"' in text
        assert 'data-testid="payments-charges">Not enabled<' in text
        assert 'data-testid="payments-details">Not yet<' in text
        assert "acct_evil" not in text
        assert "acct_ours" in text
    after = [
        (a.details_submitted, a.charges_enabled, a.payouts_enabled, a.requirements_due)
        for a in accounts(ours)
    ]
    assert after == before
    assert stripe_stand_in.requests == []  # nor does it ask Stripe


def test_the_status_shows_the_stored_flags(roster, restaurants, settings, stripe_stand_in):
    settings.PLATFORM_FEE_PERCENT = "2.9"
    settings.PLATFORM_FEE_FIXED = 30
    ours, theirs = restaurants
    store_account(
        ours,
        "acct_ours",
        details_submitted=True,
        charges_enabled=True,
        payouts_enabled=False,
        requirements_due=["external_account", "tos_acceptance.date"],
        disabled_reason="requirements.past_due",
    )
    store_account(theirs, "acct_theirs", charges_enabled=False)

    body = api_client(roster[("ours", "admin")]).get(ACCOUNT).json()
    assert body["configured"] is True
    assert body["connected"] is True
    assert body["account_id"] == "acct_ours"
    assert (body["details_submitted"], body["charges_enabled"], body["payouts_enabled"]) == (
        True,
        True,
        False,
    )
    assert body["requirements_due"] == ["external_account", "tos_acceptance.date"]
    assert body["disabled_reason"] == "requirements.past_due"
    assert (body["platform_fee_percent"], body["platform_fee_fixed"]) == ("2.90", 30)

    text = browser(roster[("ours", "owner")]).get(PAGE).content.decode()
    assert 'data-testid="payments-charges">Enabled<' in text
    assert 'data-testid="payments-payouts">Not enabled<' in text
    assert 'data-testid="payments-details">Yes<' in text
    assert "tos_acceptance.date" in text
    assert "requirements.past_due" in text
    assert "2.9 % of each card payment plus 0.30 EUR" in text
    assert "acct_theirs" not in text


def test_the_status_changes_when_stripe_says_so(roster, restaurants, stripe_stand_in):
    """Connected here, then Stripe's account.updated (Connect endpoint) finds the account
    through its route and moves the flags the pages show."""
    owner = roster[("ours", "owner")]
    account_id = post(api_client(owner), ACCOUNT).json()["account_id"]
    updated = event(
        "account.updated",
        {
            "id": account_id,
            "object": "account",
            "details_submitted": True,
            "charges_enabled": True,
            "payouts_enabled": True,
            "requirements": {"currently_due": [], "disabled_reason": None},
        },
        account=account_id,
    )
    payload = json.dumps(updated).encode()
    delivered = Client().post(
        reverse("stripe-webhook-connect"),
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_event(payload, "whsec_connect_test"),
    )
    assert delivered.status_code == 200
    body = api_client(owner).get(ACCOUNT).json()
    assert (body["details_submitted"], body["charges_enabled"], body["payouts_enabled"]) == (
        True,
        True,
        True,
    )
    text = browser(owner).get(PAGE).content.decode()
    assert 'data-testid="payments-charges">Enabled<' in text
    assert accounts(restaurants[1]) == []


def test_a_page_without_stripe_offers_nothing(roster, settings):
    settings.STRIPE_SECRET_KEY = ""
    owner = roster[("ours", "owner")]
    page = browser(owner).get(PAGE)
    assert page.status_code == 200
    assert b'data-testid="payments-not-configured"' in page.content
    assert b'data-testid="payments-connect"' not in page.content
    refused = browser(owner).post(PAGE)
    assert refused.status_code == 503
    assert b"not configured" in refused.content
    response = post(api_client(owner), ACCOUNT)
    assert response.status_code == 503
    assert response.json()["code"] == "stripe_not_configured"
    assert api_client(owner).get(ACCOUNT).json()["configured"] is False


# --- Stripe failing --------------------------------------------------------------------------


def stripe_down(stand_in):
    for _ in range(3):  # the request and the SDK's two retries
        stand_in.fail(500, "api_error", "Stripe is having trouble.")


def test_stripe_failing_to_create_the_account_writes_nothing(roster, restaurants, stripe_stand_in):
    ours = restaurants[0]
    client = api_client(roster[("ours", "owner")])
    stripe_down(stripe_stand_in)
    response = post(client, ACCOUNT)
    assert response.status_code == 502
    assert response.json()["code"] == "stripe_error"
    assert "Stripe is having trouble." in response.json()["detail"]
    assert accounts(ours) == []
    assert routes(ours) == []
    assert connected_events(ours) == []
    # Once Stripe answers again, connecting works.
    assert post(client, ACCOUNT).status_code == 201


def test_stripe_refusing_is_a_clear_error(roster, restaurants, stripe_stand_in):
    stripe_stand_in.fail(400, "invalid_request_error", "Country 'XX' is not supported.")
    response = post(api_client(roster[("ours", "owner")]), ACCOUNT)
    assert response.status_code == 502
    assert response.json()["code"] == "stripe_error"
    assert "Country 'XX' is not supported." in response.json()["detail"]
    assert accounts(restaurants[0]) == []


def test_stripe_failing_to_make_a_link(roster, restaurants, stripe_stand_in):
    client = api_client(roster[("ours", "owner")])
    post(client, ACCOUNT)
    stripe_down(stripe_stand_in)
    response = post(client, LINK)
    assert response.status_code == 502
    assert response.json()["code"] == "stripe_error"
    assert len(accounts(restaurants[0])) == 1  # the account stays: it exists at Stripe


def test_the_dashboard_shows_stripe_failures_as_a_message(roster, restaurants, stripe_stand_in):
    owner = browser(roster[("ours", "owner")])
    stripe_down(stripe_stand_in)
    response = owner.post(PAGE)
    assert response.status_code == 502
    assert b"Stripe is having trouble." in response.content
    assert accounts(restaurants[0]) == []

    # Connected already, but Stripe refuses the link: a message on the page and on refresh.
    assert owner.post(PAGE).status_code == 303
    stripe_stand_in.fail(400, "invalid_request_error", "Link refused.")
    refused = owner.post(PAGE)
    assert refused.status_code == 502
    assert b"Link refused." in refused.content
    stripe_stand_in.fail(400, "invalid_request_error", "Link refused again.")
    refreshed = owner.get(REFRESH)
    assert refreshed.status_code == 502
    assert b"Link refused again." in refreshed.content
    assert len(accounts(restaurants[0])) == 1
