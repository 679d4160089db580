"""The connected account's balance and payouts: listing them, the Owner's instant payout
(recent MFA when the restaurant asks), and payout webhooks in any order."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from payments.models import Payout
from tenants.context import tenant_context
from tests.factories import api_client, signed_token, token_for
from tests.payments.money_support import audit_events, connect_cards, deliver
from tests.support.stripe_server import event

pytestmark = pytest.mark.django_db

URL = "/api/v1/payments/payouts"


@pytest.fixture
def shops(restaurants, stripe_stand_in):
    ours, theirs = restaurants
    return {"ours": connect_cards(ours), "theirs": connect_cards(theirs)}


def post(client: Client, body: Any, **headers: str | None):
    """POST a payout as one operation: a fresh Idempotency-Key unless one is given (None
    sends none)."""
    headers.setdefault("Idempotency-Key", uuid.uuid4().hex)
    sent = {name: value for name, value in headers.items() if value is not None}
    return client.post(URL, data=json.dumps(body), content_type="application/json", headers=sent)


def payouts(restaurant) -> list[tuple[str, int, str, str]]:
    with tenant_context(restaurant):
        return list(
            Payout.objects.order_by("id").values_list("payout_id", "amount", "method", "status")
        )


# --- Reading -------------------------------------------------------------------------------


def test_the_owner_sees_the_balance_and_recent_payouts(roster, shops, stripe_stand_in):
    stripe_stand_in.objects["po_earlier"] = {
        "id": "po_earlier",
        "object": "payout",
        "amount": 5000,
        "currency": "eur",
        "method": "standard",
        "status": "paid",
        "arrival_date": 1_780_000_000,
        "created": 1_779_900_000,
        "failure_message": None,
    }
    response = api_client(roster[("ours", "owner")]).get(reverse("api-payouts"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["connected"] is True
    assert body["account_id"] == shops["ours"]["account"]
    assert body["balance"] == [
        {"currency": "EUR", "available": 12345, "pending": 2000, "instant_available": 12345}
    ]
    [listed] = body["payouts"]
    assert (listed["id"], listed["amount"], listed["currency"], listed["status"]) == (
        "po_earlier",
        5000,
        "EUR",
        "paid",
    )
    assert listed["arrival_date"].startswith("2026-05-28")
    reads = [r for r in stripe_stand_in.requests if r.method == "GET"]
    assert [r.path for r in reads] == ["/v1/balance", "/v1/payouts"]
    assert {r.account for r in reads} == {shops["ours"]["account"]}


def test_without_a_connected_account_there_is_nothing_to_pay_out(
    roster, restaurants, stripe_stand_in
):
    owner = api_client(roster[("ours", "owner")])
    listing = owner.get(reverse("api-payouts"))
    assert listing.status_code == 200
    assert listing.json() == {
        "connected": False,
        "account_id": "",
        "payouts_enabled": False,
        "balance": [],
        "payouts": [],
    }
    response = post(owner, {"amount": 100})
    assert response.status_code == 409
    assert response.json()["code"] == "not_connected"
    assert stripe_stand_in.requests == []


def test_stripe_being_down_is_a_502_with_its_message(roster, shops, stripe_stand_in):
    stripe_stand_in.fail(401, "invalid_request_error", "Invalid API Key provided.")
    response = api_client(roster[("ours", "owner")]).get(reverse("api-payouts"))
    assert response.status_code == 502
    assert response.json()["type"] == "upstream_error"
    assert "Invalid API Key" in response.json()["detail"]


@pytest.mark.parametrize("role", ["admin", "manager", "cashier", "kitchen"])
def test_only_the_owner_reads_or_triggers_payouts(roster, shops, stripe_stand_in, role):
    client = api_client(roster[("ours", role)])
    assert client.get(reverse("api-payouts")).status_code == 403
    response = post(client, {"amount": 100})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert stripe_stand_in.requests == []


# --- Instant payouts -----------------------------------------------------------------------


def test_an_instant_payout_is_sent_recorded_and_audited_once(
    roster, restaurants, shops, stripe_stand_in
):
    ours = restaurants[0]
    owner = roster[("ours", "owner")]
    client = api_client(owner)
    response = post(client, {"amount": 5000}, **{"Idempotency-Key": "payout-op-0001"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["currency"], body["method"], body["status"]) == (
        5000,
        "EUR",
        "instant",
        "pending",
    )
    [sent] = stripe_stand_in.posts("/v1/payouts")
    assert sent.account == shops["ours"]["account"]
    assert (sent.form["amount"], sent.form["currency"], sent.form["method"]) == (
        "5000",
        "eur",
        "instant",
    )
    assert sent.idempotency_key == f"payout-{shops['ours']['account']}-payout-op-0001"
    assert payouts(ours) == [(body["payout_id"], 5000, "instant", "pending")]
    [audited] = audit_events(ours, "payout.triggered")
    assert audited.actor_id == owner.pk
    assert audited.changes["amount"]["after"] == 5000

    # The same operation again (a retry): found here, answered 200, nothing sent or recorded.
    again = post(client, {"amount": 5000}, **{"Idempotency-Key": "payout-op-0001"})
    assert again.status_code == 200
    assert again.json()["payout_id"] == body["payout_id"]
    assert len(stripe_stand_in.posts("/v1/payouts")) == 1
    assert len(payouts(ours)) == 1
    assert len(audit_events(ours, "payout.triggered")) == 1


def test_a_payout_needs_an_idempotency_key(roster, restaurants, shops, stripe_stand_in):
    """Without a key a retry could not be told from a second payout: refused, nothing sent."""
    response = post(
        api_client(roster[("ours", "owner")]), {"amount": 100}, **{"Idempotency-Key": None}
    )
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["attr"]) == ("invalid", "idempotency_key")
    assert stripe_stand_in.requests == []
    assert payouts(restaurants[0]) == []


def test_each_key_is_its_own_operation(roster, restaurants, shops, stripe_stand_in):
    client = api_client(roster[("ours", "owner")])
    assert post(client, {"amount": 100}, **{"Idempotency-Key": "first-payout"}).status_code == 201
    assert post(client, {"amount": 100}, **{"Idempotency-Key": "second-payout"}).status_code == 201
    keys = {r.idempotency_key for r in stripe_stand_in.posts("/v1/payouts")}
    assert len(keys) == 2
    assert len(payouts(restaurants[0])) == 2
    assert len(audit_events(restaurants[0], "payout.triggered")) == 2


def test_a_retried_payout_is_replayed_although_the_balance_dropped(
    roster, restaurants, shops, stripe_stand_in
):
    """Stripe's instant balance drops by the payout at once (the stand-in's too): a retry of
    the same operation is answered from what was recorded, before the balance is read."""
    client = api_client(roster[("ours", "owner")])
    first = post(client, {"amount": 10000}, **{"Idempotency-Key": "retry-op-0001"})
    assert first.status_code == 201
    assert stripe_stand_in.balance["instant_available"] == [{"amount": 2345, "currency": "eur"}]
    again = post(client, {"amount": 10000}, **{"Idempotency-Key": "retry-op-0001"})
    assert again.status_code == 200, again.content
    assert again.json()["payout_id"] == first.json()["payout_id"]
    assert len(stripe_stand_in.posts("/v1/payouts")) == 1
    assert len(audit_events(restaurants[0], "payout.triggered")) == 1


def test_a_payout_whose_answer_was_lost_is_found_at_stripe_on_retry(
    roster, restaurants, shops, stripe_stand_in, monkeypatch
):
    """Stripe paid out but its answer never came (502): the retry finds nothing recorded and
    a balance that no longer allows the amount, then finds the operation's payout among
    Stripe's recent ones, records it and audits it once."""
    from payments import gateway

    real = gateway.create_instant_payout

    def lost(**kwargs):
        real(**kwargs)
        raise gateway.GatewayError("Stripe could not complete the request.")

    monkeypatch.setattr(gateway, "create_instant_payout", lost)
    client = api_client(roster[("ours", "owner")])
    first = post(client, {"amount": 10000}, **{"Idempotency-Key": "lost-op-0001"})
    assert first.status_code == 502
    assert payouts(restaurants[0]) == []
    monkeypatch.setattr(gateway, "create_instant_payout", real)
    again = post(client, {"amount": 10000}, **{"Idempotency-Key": "lost-op-0001"})
    assert again.status_code == 201, again.content
    assert len(stripe_stand_in.posts("/v1/payouts")) == 1
    assert [p[1] for p in payouts(restaurants[0])] == [10000]
    assert len(audit_events(restaurants[0], "payout.triggered")) == 1


def test_a_key_reused_for_another_amount_is_refused(roster, restaurants, shops, stripe_stand_in):
    client = api_client(roster[("ours", "owner")])
    assert post(client, {"amount": 500}, **{"Idempotency-Key": "reused-key-1"}).status_code == 201
    other = post(client, {"amount": 700}, **{"Idempotency-Key": "reused-key-1"})
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(stripe_stand_in.posts("/v1/payouts")) == 1


def test_more_than_the_instant_balance_is_refused_before_stripe(
    roster, restaurants, shops, stripe_stand_in
):
    response = post(api_client(roster[("ours", "owner")]), {"amount": 12346})
    assert response.status_code == 409
    assert (response.json()["code"], response.json()["attr"]) == (
        "exceeds_instant_available",
        "amount",
    )
    assert "123.45" in response.json()["detail"]
    assert stripe_stand_in.posts("/v1/payouts") == []
    assert payouts(restaurants[0]) == []


def test_no_instant_balance_in_our_currency_is_a_clear_409(
    roster, restaurants, shops, stripe_stand_in
):
    stripe_stand_in.balance = {
        "available": [{"amount": 9000, "currency": "eur"}],
        "pending": [],
        "instant_available": [{"amount": 9000, "currency": "usd"}],
    }
    response = post(api_client(roster[("ours", "owner")]), {"amount": 100})
    assert response.status_code == 409
    assert response.json()["code"] == "instant_unavailable"
    assert stripe_stand_in.posts("/v1/payouts") == []


def test_stripe_refusing_an_instant_payout_is_a_502_with_its_message(
    roster, restaurants, shops, stripe_stand_in
):
    # The balance is read first; the payout itself is refused.
    stripe_stand_in.fail_next.append((200, {"object": "balance", **stripe_stand_in.balance}))
    stripe_stand_in.fail(
        400, "invalid_request_error", "This account is not eligible for instant payouts."
    )
    response = post(api_client(roster[("ours", "owner")]), {"amount": 100})
    assert response.status_code == 502
    assert "not eligible for instant payouts" in response.json()["detail"]
    assert payouts(restaurants[0]) == []
    assert audit_events(restaurants[0], "payout.triggered") == []


def test_payouts_need_stripe_to_have_enabled_them(roster, restaurants, stripe_stand_in):
    connect_cards(restaurants[0], payouts_enabled=False)
    response = post(api_client(roster[("ours", "owner")]), {"amount": 100})
    assert response.status_code == 409
    assert response.json()["code"] == "payouts_disabled"
    assert stripe_stand_in.posts("/v1/payouts") == []


@pytest.mark.parametrize(
    ("body", "headers", "attr"),
    [
        ({"amount": 0}, {}, "amount"),
        ({"amount": "100"}, {}, "amount"),
        ({"amount": 1.5}, {}, "amount"),
        ({}, {}, "amount"),
        ({"amount": 100, "currency": "usd"}, {}, "currency"),
        ({"amount": 100, "method": "standard"}, {}, "method"),
        ({"amount": 100}, {"Idempotency-Key": "short"}, "idempotency_key"),
        ({"amount": 100}, {"Idempotency-Key": "has spaces in it"}, "idempotency_key"),
        ({"amount": 100}, {"Idempotency-Key": "trailing-newline-0001\n"}, "idempotency_key"),
    ],
)
def test_bad_payout_requests_are_400(
    roster, restaurants, shops, stripe_stand_in, body, headers, attr
):
    response = post(api_client(roster[("ours", "owner")]), body, **headers)
    assert response.status_code == 400, response.content
    assert response.json()["attr"] == attr
    assert stripe_stand_in.posts("/v1/payouts") == []


def test_payouts_need_a_recent_second_factor_when_the_restaurant_asks(
    roster, restaurants, shops, stripe_stand_in
):
    ours = restaurants[0]
    ours.require_mfa_for_sensitive_actions = True
    ours.save()
    owner = roster[("ours", "owner")]

    def client(fva):
        return Client(HTTP_AUTHORIZATION=f"Bearer {signed_token(owner, fva=fva)}")

    stale = post(client((0, -1)), {"amount": 100})
    assert stale.status_code == 403
    assert stale.json()["code"] == "reverification_required"
    assert stripe_stand_in.posts("/v1/payouts") == []
    # Reading the balance is not the sensitive part.
    assert client((0, -1)).get(reverse("api-payouts")).status_code == 200
    assert post(client((0, 2)), {"amount": 100}).status_code == 201
    assert len(audit_events(ours, "payout.triggered")) == 1


# --- Payout webhooks -----------------------------------------------------------------------


def payout_object(payout_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": payout_id,
        "object": "payout",
        "amount": 7000,
        "currency": "eur",
        "method": "standard",
        "status": status,
        "arrival_date": 1_780_000_000,
        "created": 1_779_900_000,
        "failure_message": None,
        **fields,
    }


def test_payout_events_in_any_order_leave_the_newest_state(restaurants, shops):
    ours = restaurants[0]
    account = shops["ours"]["account"]
    paid = event("payout.paid", payout_object("po_1", "paid"), account=account, created=2_000)
    created = event(
        "payout.created", payout_object("po_1", "pending"), account=account, created=1_000
    )
    deliver(paid)
    deliver(created)  # late
    deliver(paid)  # repeated
    assert payouts(ours) == [("po_1", 7000, "standard", "paid")]
    failed = event(
        "payout.failed",
        payout_object("po_1", "failed", failure_message="The bank account has been closed."),
        account=account,
        created=3_000,
    )
    deliver(failed)
    deliver(created)
    with tenant_context(ours):
        stored = Payout.objects.get()
    assert (stored.status, stored.failure_message) == (
        "failed",
        "The bank account has been closed.",
    )
    assert stored.state_as_of == 3_000


def test_a_payout_event_of_the_same_second_never_moves_back(restaurants, shops):
    ours = restaurants[0]
    account = shops["ours"]["account"]
    deliver(event("payout.paid", payout_object("po_2", "paid"), account=account, created=500))
    deliver(
        event("payout.updated", payout_object("po_2", "in_transit"), account=account, created=500)
    )
    assert payouts(ours) == [("po_2", 7000, "standard", "paid")]


def test_our_instant_payout_is_updated_by_its_webhook(roster, restaurants, shops, stripe_stand_in):
    ours = restaurants[0]
    response = post(api_client(roster[("ours", "owner")]), {"amount": 2500})
    payout_id = response.json()["payout_id"]
    paid = payout_object(payout_id, "paid", amount=2500, method="instant")
    deliver(event("payout.paid", paid, account=shops["ours"]["account"]))
    assert payouts(ours) == [(payout_id, 2500, "instant", "paid")]


def test_payout_events_stay_in_their_restaurant(restaurants, shops):
    ours, theirs = restaurants
    theirs_account = shops["theirs"]["account"]
    deliver(event("payout.paid", payout_object("po_theirs", "paid"), account=theirs_account))
    assert payouts(ours) == []
    assert payouts(theirs) == [("po_theirs", 7000, "standard", "paid")]


# --- The payouts page ----------------------------------------------------------------------


def signed_in(member) -> Client:
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token_for(member)
    return client


def test_the_owner_page_shows_the_balance_and_the_instant_payout_form(
    roster, restaurants, shops, stripe_stand_in
):
    owner = signed_in(roster[("ours", "owner")])
    page = owner.get(reverse("dashboard:payouts"))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="balance"' in html
    assert "123.45" in html
    assert 'data-testid="payout-form"' in html
    assert 'href="/dashboard/payouts"' in html  # in the navigation

    response = owner.post(reverse("dashboard:payouts"), {"amount": "12.00"}, follow=True)
    assert "Instant payout of 12.00 EUR requested" in response.content.decode()
    assert [p[1:3] for p in payouts(restaurants[0])] == [(1200, "instant")]
    assert len(audit_events(restaurants[0], "payout.triggered")) == 1


def test_a_resubmitted_payout_form_pays_out_once(roster, restaurants, shops, stripe_stand_in):
    owner = signed_in(roster[("ours", "owner")])
    form = {"amount": "5.00", "operation": "0123456789abcdef0123456789abcdef"}
    owner.post(reverse("dashboard:payouts"), form)
    owner.post(reverse("dashboard:payouts"), form)
    assert len(payouts(restaurants[0])) == 1
    assert len(audit_events(restaurants[0], "payout.triggered")) == 1


def test_the_page_says_when_no_account_is_connected(roster, restaurants, stripe_stand_in):
    page = signed_in(roster[("ours", "owner")]).get(reverse("dashboard:payouts"))
    assert page.status_code == 200
    assert 'data-testid="not-connected"' in page.content.decode()
    assert 'data-testid="payout-form"' not in page.content.decode()


@pytest.mark.parametrize("role", ["admin", "manager", "cashier", "kitchen"])
def test_the_payouts_page_is_the_owners(roster, shops, stripe_stand_in, role):
    client = signed_in(roster[("ours", role)])
    assert client.get(reverse("dashboard:payouts")).status_code == 403
    assert client.post(reverse("dashboard:payouts"), {"amount": "1.00"}).status_code == 403
    assert 'href="/dashboard/payouts"' not in client.get(reverse("dashboard:home")).content.decode()
    assert stripe_stand_in.requests == []


def test_the_payout_form_asks_for_a_fresh_second_factor_when_required(
    roster, restaurants, shops, stripe_stand_in
):
    ours = restaurants[0]
    ours.require_mfa_for_sensitive_actions = True
    ours.save()
    owner = roster[("ours", "owner")]
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = signed_token(owner, fva=(0, -1))
    assert client.get(reverse("dashboard:payouts")).status_code == 200
    response = client.post(reverse("dashboard:payouts"), {"amount": "1.00"}, follow=True)
    assert "Verify your second factor again" in response.content.decode()
    assert stripe_stand_in.posts("/v1/payouts") == []
    client.cookies["__session"] = signed_token(owner, fva=(0, 1))
    client.post(reverse("dashboard:payouts"), {"amount": "1.00"})
    assert [p[1] for p in payouts(ours)] == [100]


def test_a_form_operation_with_a_trailing_newline_is_not_used_as_the_key(
    roster, restaurants, shops, stripe_stand_in
):
    """Only an operation the page minted (exactly 32 hex digits) keys the payout; anything
    else gets a key of its own, and the payout is made."""
    owner = signed_in(roster[("ours", "owner")])
    form = {"amount": "1.00", "operation": "0123456789abcdef0123456789abcdef\n"}
    response = owner.post(reverse("dashboard:payouts"), form, follow=True)
    assert "Instant payout of 1.00 EUR requested" in response.content.decode()
    [sent] = stripe_stand_in.posts("/v1/payouts")
    assert "\n" not in (sent.idempotency_key or "")
    assert "0123456789abcdef0123456789abcdef" not in (sent.idempotency_key or "")


# --- The payout webhook racing the Owner's request ----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_payout_recorded_first_by_its_webhook_is_audited_once_as_the_owners(
    stripe_stand_in, monkeypatch
):
    """Stripe's payout.created commits the payout before the Owner's request records it: the
    request claims it for its operation and audits it once, as the Owner's; a retry of the
    operation and later events add nothing."""
    import threading

    from django.db import connection

    from payments import gateway
    from staff.roles import Role
    from tests.factories import make_restaurant, make_staff

    ours = make_restaurant("ours")
    make_restaurant("theirs")
    ids = connect_cards(ours)
    owner = make_staff(ours, Role.OWNER)
    real = gateway.create_instant_payout
    delivered: list[int] = []

    def webhook_first(**kwargs):
        payout = real(**kwargs)

        def deliver_now() -> None:
            try:
                delivered.append(
                    deliver(
                        event("payout.created", payout, account=kwargs["account_id"])
                    ).status_code
                )
            finally:
                connection.close()

        thread = threading.Thread(target=deliver_now)
        thread.start()
        thread.join(30)
        return payout

    monkeypatch.setattr(gateway, "create_instant_payout", webhook_first)
    client = api_client(owner)
    response = post(client, {"amount": 500}, **{"Idempotency-Key": "raced-op-0001"})
    assert response.status_code == 201, response.content
    assert delivered == [200]
    with tenant_context(ours):
        [stored] = Payout.objects.all()
    assert (stored.payout_id, stored.amount, stored.operation_id) == (
        response.json()["payout_id"],
        500,
        "raced-op-0001",
    )
    [audited] = audit_events(ours, "payout.triggered")
    assert audited.actor_id == owner.pk
    again = post(client, {"amount": 500}, **{"Idempotency-Key": "raced-op-0001"})
    assert again.status_code == 200
    assert len(audit_events(ours, "payout.triggered")) == 1
    assert {r.account for r in stripe_stand_in.posts("/v1/payouts")} == {ids["account"]}
