"""Refunds of card payments: through the API and the order page, against the Stripe
stand-in, and the ``charge.refunded`` webhook through the real Connect endpoint."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import Customer
from orders.checkout_request import parse_checkout
from orders.models import Order, Status, StatusChange
from orders.placement import place_order
from payments.models import Refund
from payments.money_common import ProviderError
from payments.refunds import refund_create, refund_remaining
from staff.auth import Actor
from tenants.context import tenant_context
from tests.factories import api_client, run_concurrently, token_for
from tests.payments.money_support import (
    NOW,
    audit_events,
    connect_cards,
    deliver,
    fresh_payment,
    order_of,
    paid_order,
)
from tests.support.stripe_server import event

pytestmark = pytest.mark.django_db


@pytest.fixture
def shops(restaurants, stripe_stand_in):
    ours, theirs = restaurants
    return {"ours": connect_cards(ours), "theirs": connect_cards(theirs)}


@pytest.fixture
def payment(restaurants, shops, stripe_stand_in):
    return paid_order(stripe_stand_in, restaurants[0], shops["ours"])


def refund(member, order_id: int, body: Any, client: Client | None = None, *, key: str = ""):
    """POST a refund as ``member``, as one operation (a fresh Idempotency-Key unless given)."""
    return (client or api_client(member)).post(
        reverse("api-order-refunds", kwargs={"pk": order_id}),
        data=json.dumps(body),
        content_type="application/json",
        headers={"Idempotency-Key": key or uuid.uuid4().hex},
    )


def refunds_state(restaurant, payment) -> dict[str, Any]:
    """What staff see of the money: the payment's refunded total, the order's status and
    the refund rows."""
    with tenant_context(restaurant):
        order = Order.objects.get(pk=payment.order_id)
        rows = list(Refund.objects.filter(payment_id=payment.pk).values_list("amount", "status"))
    return {
        "refunded": fresh_payment(restaurant, payment).amount_refunded,
        "order": order.status,
        "refunds": rows,
    }


# --- Partial and full refunds ------------------------------------------------------------


def test_a_partial_refund_is_sent_to_stripe_recorded_and_audited(
    roster, restaurants, payment, stripe_stand_in
):
    ours = restaurants[0]
    manager = roster[("ours", "manager")]
    response = refund(manager, payment.order_id, {"amount": 500, "reason": "Fries were cold"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["refund"]["amount"] == 500
    assert body["refund"]["status"] == "succeeded"
    assert body["refund"]["reason"] == "Fries were cold"
    assert body["order_status"] == "placed"
    assert body["payment"]["amount_refunded"] == 500
    assert body["payment"]["remaining"] == payment.amount - 500

    [sent] = stripe_stand_in.posts("/v1/refunds")
    with tenant_context(ours):
        stored = Refund.objects.get()
    assert sent.account == payment.account_id
    assert sent.form["payment_intent"] == payment.payment_intent_id
    assert sent.form["amount"] == "500"
    assert sent.form["refund_application_fee"] == "true"
    assert sent.idempotency_key == f"refund-{stored.key}"
    assert stored.refund_application_fee is True
    assert stripe_stand_in.objects[stored.refund_id]["object"] == "refund"
    assert stored.staff_label == manager.label

    assert refunds_state(ours, payment) == {
        "refunded": 500,
        "order": "placed",
        "refunds": [(500, "succeeded")],
    }
    [audited] = audit_events(ours, "payment.refunded")
    assert audited.actor_id == manager.pk
    assert audited.target_id == str(payment.order_id)
    assert audited.changes["amount"]["after"] == 500
    assert audited.changes["reason"]["after"] == "Fries were cold"
    assert audited.changes["remaining"] == {
        "before": payment.amount,
        "after": payment.amount - 500,
    }


def test_a_full_refund_moves_the_order_to_refunded_and_updates_the_customer(
    roster, restaurants, payment, stripe_stand_in
):
    ours = restaurants[0]
    with tenant_context(ours):
        customer = Customer.objects.get(orders__pk=payment.order_id)
    assert (customer.order_count, customer.total_spent) == (1, payment.amount)

    response = refund(
        roster[("ours", "owner")], payment.order_id, {"amount": payment.amount, "reason": "Lost"}
    )
    assert response.status_code == 201, response.content
    assert response.json()["order_status"] == "refunded"
    assert response.json()["payment"]["remaining"] == 0
    assert refunds_state(ours, payment)["order"] == "refunded"
    with tenant_context(ours):
        customer.refresh_from_db()
        change = StatusChange.objects.get(order_id=payment.order_id, to_status=Status.REFUNDED)
    assert (customer.order_count, customer.total_spent) == (0, 0)
    assert change.actor_label == roster[("ours", "owner")].label

    # Nothing remains: another refund is refused before Stripe hears of it.
    again = refund(roster[("ours", "owner")], payment.order_id, {"amount": 1, "reason": "x"})
    assert again.status_code == 409
    assert again.json()["code"] == "fully_refunded"
    assert len(stripe_stand_in.posts("/v1/refunds")) == 1
    assert len(audit_events(ours, "payment.refunded")) == 1


def test_partial_refunds_add_up_to_a_full_one(roster, restaurants, payment):
    owner = roster[("ours", "owner")]
    first = refund(owner, payment.order_id, {"amount": 1000, "reason": "Late"})
    assert first.status_code == 201
    assert first.json()["order_status"] == "placed"
    rest = payment.amount - 1000
    second = refund(owner, payment.order_id, {"amount": rest, "reason": "Very late"})
    assert second.status_code == 201
    assert second.json()["order_status"] == "refunded"
    assert refunds_state(restaurants[0], payment)["refunded"] == payment.amount


def test_a_refund_above_what_remains_is_refused_and_never_sent(
    roster, restaurants, payment, stripe_stand_in
):
    owner = roster[("ours", "owner")]
    assert refund(owner, payment.order_id, {"amount": 1000, "reason": "Late"}).status_code == 201
    response = refund(owner, payment.order_id, {"amount": payment.amount, "reason": "All"})
    assert response.status_code == 409
    body = response.json()
    assert (body["code"], body["attr"]) == ("exceeds_refundable", "amount")
    remaining = payment.amount - 1000
    assert f"{remaining / 100:.2f}" in body["detail"]
    assert len(stripe_stand_in.posts("/v1/refunds")) == 1
    assert refunds_state(restaurants[0], payment) == {
        "refunded": 1000,
        "order": "placed",
        "refunds": [(1000, "succeeded")],
    }


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"amount": 0, "reason": "x"}, "amount"),
        ({"amount": -100, "reason": "x"}, "amount"),
        ({"amount": "100", "reason": "x"}, "amount"),
        ({"amount": 1.5, "reason": "x"}, "amount"),
        ({"amount": True, "reason": "x"}, "amount"),
        ({"amount": 10**12, "reason": "x"}, "amount"),
        ({"reason": "x"}, "amount"),
        ({"amount": 100}, "reason"),
        ({"amount": 100, "reason": "   "}, "reason"),
        ({"amount": 100, "reason": "x" * 301}, "reason"),
        ({"amount": 100, "reason": "bad\x00byte"}, "reason"),
        ({"amount": 100, "reason": "bad \ud800 text"}, "reason"),
        ({"amount": 100, "reason": "x", "\udfff": 1}, "\\udfff"),
        ({"amount": 100, "reason": "x", "refund_application_fee": False}, "refund_application_fee"),
        ({"amount": 100, "reason": "x", "restaurant": 2}, "restaurant"),
    ],
)
def test_bad_refund_requests_are_400_and_change_nothing(
    roster, restaurants, payment, stripe_stand_in, body, attr
):
    response = refund(roster[("ours", "owner")], payment.order_id, body)
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"type", "code", "detail", "attr", "errors"}
    assert response.json()["attr"] == attr
    assert stripe_stand_in.posts("/v1/refunds") == []
    assert refunds_state(restaurants[0], payment)["refunds"] == []


@pytest.mark.parametrize("body", [[1, 2], "refund", None])
def test_a_body_that_is_not_an_object_is_400(roster, payment, stripe_stand_in, body):
    response = refund(roster[("ours", "owner")], payment.order_id, body)
    assert response.status_code == 400
    assert stripe_stand_in.posts("/v1/refunds") == []


def test_the_reason_may_be_300_characters(roster, restaurants, payment):
    response = refund(
        roster[("ours", "owner")], payment.order_id, {"amount": 1, "reason": "y" * 300}
    )
    assert response.status_code == 201
    assert response.json()["refund"]["reason"] == "y" * 300


def test_only_succeeded_card_payments_are_refundable(roster, restaurants, shops, stripe_stand_in):
    ours = restaurants[0]
    ids = shops["ours"]
    owner = roster[("ours", "owner")]
    with tenant_context(ours):
        at_pickup, _ = place_order(
            restaurant=ours,
            request=parse_checkout(
                {
                    "lines": [{"item_id": ids["fries"], "quantity": 1}],
                    "name": "Bo",
                    "email": "bo@example.com",
                },
                ours.zone,
            ),
            idempotency_key="pickup-pay",
            now=NOW,
        )
        waiting, _ = place_order(
            restaurant=ours,
            request=parse_checkout(
                {
                    "lines": [{"item_id": ids["fries"], "quantity": 1}],
                    "name": "Cy",
                    "email": "cy@example.com",
                    "payment_method": "card",
                },
                ours.zone,
            ),
            idempotency_key="card-waiting",
            now=NOW,
        )
    from payments.services import payment_start

    with tenant_context(ours):
        payment_start(order=waiting)
    for order in (at_pickup, waiting):
        response = refund(owner, order.pk, {"amount": 100, "reason": "x"})
        assert response.status_code == 409, response.content
        assert response.json()["code"] == "not_refundable"
        listing = api_client(owner).get(reverse("api-order-refunds", kwargs={"pk": order.pk}))
        assert listing.status_code == 200
        assert listing.json()["refunds"] == []
    assert stripe_stand_in.posts("/v1/refunds") == []


def test_the_application_fee_policy_is_sent_and_kept(
    roster, restaurants, payment, stripe_stand_in, settings
):
    settings.REFUND_APPLICATION_FEE = False
    response = refund(roster[("ours", "owner")], payment.order_id, {"amount": 200, "reason": "x"})
    assert response.status_code == 201
    assert response.json()["refund"]["refund_application_fee"] is False
    [sent] = stripe_stand_in.posts("/v1/refunds")
    assert sent.form["refund_application_fee"] == "false"


# --- Stripe's answers ----------------------------------------------------------------------


def test_stripe_refusing_leaves_a_failed_refund_and_nothing_else(
    roster, restaurants, payment, stripe_stand_in
):
    ours = restaurants[0]
    stripe_stand_in.fail(402, "invalid_request_error", "Insufficient funds in the account.")
    actor = Actor(member=roster[("ours", "manager")])
    with tenant_context(ours), pytest.raises(ProviderError) as raised:
        refund_create(
            actor=actor,
            order_id=payment.order_id,
            amount=700,
            reason="Late",
            operation_id="op-late-1",
        )
    assert raised.value.status == 502
    assert "Insufficient funds" in raised.value.detail
    with tenant_context(ours):
        failed = Refund.objects.get()
    assert (failed.status, failed.amount) == ("failed", 700)
    assert "Insufficient funds" in failed.failure_message
    assert refunds_state(ours, payment)["refunded"] == 0
    assert refunds_state(ours, payment)["order"] == "placed"
    assert audit_events(ours, "payment.refunded") == []
    # A failed refund holds nothing back: the whole amount can still be refunded.
    with tenant_context(ours):
        assert refund_remaining(fresh_payment(ours, payment)) == payment.amount


def test_stripe_refusing_answers_502_through_the_api(roster, restaurants, payment, stripe_stand_in):
    ours = restaurants[0]
    stripe_stand_in.fail(400, "invalid_request_error", "This charge cannot be refunded.")
    response = refund(roster[("ours", "owner")], payment.order_id, {"amount": 700, "reason": "x"})
    assert response.status_code == 502
    body = response.json()
    assert set(body) == {"type", "code", "detail", "attr"}
    assert body["type"] == "upstream_error"
    assert "This charge cannot be refunded." in body["detail"]
    assert refunds_state(ours, payment)["refunded"] == 0
    assert audit_events(ours, "payment.refunded") == []


def test_a_retried_refund_request_reuses_the_refunds_key(
    roster, restaurants, payment, stripe_stand_in
):
    """Stripe fails once with a 500; the SDK retries with the same idempotency key, and the
    money goes back once."""
    stripe_stand_in.fail(500, "api_error", "Stripe hiccuped.")
    response = refund(roster[("ours", "owner")], payment.order_id, {"amount": 300, "reason": "x"})
    assert response.status_code == 201, response.content
    attempts = stripe_stand_in.posts("/v1/refunds")
    assert len(attempts) == 2
    with tenant_context(restaurants[0]):
        key = Refund.objects.get().key
    assert {attempt.idempotency_key for attempt in attempts} == {f"refund-{key}"}
    assert stripe_stand_in.objects[payment.payment_intent_id]["amount_refunded"] == 300
    assert refunds_state(restaurants[0], payment)["refunded"] == 300


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_never_exceed_what_was_paid(stripe_stand_in):
    """Two refunds that each fit but together exceed the payment: exactly one goes through."""
    from staff.roles import Role
    from tests.factories import make_restaurant, make_staff

    ours = make_restaurant("ours")
    make_restaurant("theirs")
    ids = connect_cards(ours)
    owner, manager = make_staff(ours, Role.OWNER), make_staff(ours, Role.MANAGER)
    payment = paid_order(stripe_stand_in, ours, ids)
    share = payment.amount // 2 + 100
    results = run_concurrently(
        lambda: refund(owner, payment.order_id, {"amount": share, "reason": "one"}).status_code,
        lambda: refund(manager, payment.order_id, {"amount": share, "reason": "two"}).status_code,
    )
    assert sorted(results) == [201, 409]
    assert len(stripe_stand_in.posts("/v1/refunds")) == 1
    state = refunds_state(ours, payment)
    assert state["refunded"] == share
    assert state["refunds"] == [(share, "succeeded")]
    assert len(audit_events(ours, "payment.refunded")) == 1


# --- Who may refund -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["cashier", "kitchen"])
def test_roles_without_the_refund_scope_get_403(
    roster, restaurants, payment, stripe_stand_in, role
):
    member = roster[("ours", role)]
    response = refund(member, payment.order_id, {"amount": 100, "reason": "x"})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    listing = api_client(member).get(reverse("api-order-refunds", kwargs={"pk": payment.order_id}))
    assert listing.status_code == 403
    assert stripe_stand_in.posts("/v1/refunds") == []


def test_another_restaurants_order_is_404(roster, restaurants, shops, stripe_stand_in):
    theirs_payment = paid_order(stripe_stand_in, restaurants[1], shops["theirs"])
    response = refund(
        roster[("ours", "owner")], theirs_payment.order_id, {"amount": 1, "reason": "x"}
    )
    assert response.status_code == 404
    assert stripe_stand_in.posts("/v1/refunds") == []


def test_the_refund_list_shows_each_refund_and_what_remains(roster, restaurants, payment):
    owner = roster[("ours", "owner")]
    refund(owner, payment.order_id, {"amount": 250, "reason": "Missing soda"})
    body = api_client(owner).get(reverse("api-order-refunds", kwargs={"pk": payment.order_id}))
    assert body.status_code == 200
    data = body.json()
    assert data["payment"] == {
        "status": "succeeded",
        "currency": payment.currency,
        "amount": payment.amount,
        "amount_refunded": 250,
        "remaining": payment.amount - 250,
    }
    [row] = data["refunds"]
    assert (row["amount"], row["reason"], row["status"]) == (250, "Missing soda", "succeeded")
    assert row["staff"] == owner.label


# --- The order page -----------------------------------------------------------------------


def page(member, order_id: int):
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token_for(member)
    return client, client.get(reverse("dashboard:order", args=[order_id]))


def refund_form(response) -> dict[str, str]:
    """The refund form's hidden operation, as the order page drew it."""
    match = re.search(r'name="operation" value="([0-9a-f]{32})"', response.content.decode())
    assert match, "no operation in the refund form"
    return {"operation": match.group(1)}


@pytest.mark.parametrize("role", ["owner", "admin", "manager"])
def test_refunding_roles_see_the_form_with_what_remains(roster, payment, role):
    _, response = page(roster[("ours", role)], payment.order_id)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="refund-form"' in html
    assert f"{payment.amount / 100:.2f}" in html


@pytest.mark.parametrize("role", ["cashier", "kitchen"])
def test_other_roles_get_no_refund_form(roster, payment, role):
    client, response = page(roster[("ours", role)], payment.order_id)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="refund-form"' not in html
    assert reverse("dashboard:order-refund", args=[payment.order_id]) not in html
    posted = client.post(
        reverse("dashboard:order-refund", args=[payment.order_id]),
        {"amount": "1.00", "reason": "x"},
    )
    assert posted.status_code == 403


def test_the_form_refunds_in_major_units(roster, restaurants, payment, stripe_stand_in):
    client, drawn = page(roster[("ours", "manager")], payment.order_id)
    url = reverse("dashboard:order-refund", args=[payment.order_id])
    form = {"amount": "2,50", "reason": "Wrong drink", **refund_form(drawn)}
    response = client.post(url, form, follow=True)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Refunded 2.50" in html
    assert "Wrong drink" in html
    assert refunds_state(restaurants[0], payment)["refunded"] == 250
    [sent] = stripe_stand_in.posts("/v1/refunds")
    assert sent.form["amount"] == "250"


@pytest.mark.parametrize("amount", ["", "abc", "0", "-1", "1.234", "1e99", "NaN"])
def test_the_form_refuses_amounts_that_are_not_money(
    roster, restaurants, payment, stripe_stand_in, amount
):
    client, drawn = page(roster[("ours", "manager")], payment.order_id)
    url = reverse("dashboard:order-refund", args=[payment.order_id])
    form = {"amount": amount, "reason": "x", **refund_form(drawn)}
    response = client.post(url, form, follow=True)
    assert response.status_code == 200
    assert "Refund:" in response.content.decode()
    assert stripe_stand_in.posts("/v1/refunds") == []


def test_the_form_shows_stripes_refusal_and_the_failed_refund(
    roster, restaurants, payment, stripe_stand_in
):
    stripe_stand_in.fail(400, "invalid_request_error", "This charge cannot be refunded.")
    client, drawn = page(roster[("ours", "owner")], payment.order_id)
    url = reverse("dashboard:order-refund", args=[payment.order_id])
    form = {"amount": "3.00", "reason": "Spilled", **refund_form(drawn)}
    response = client.post(url, form, follow=True)
    html = response.content.decode()
    assert "Refund not made" in html
    assert "This charge cannot be refunded." in html
    assert refunds_state(restaurants[0], payment) == {
        "refunded": 0,
        "order": "placed",
        "refunds": [(300, "failed")],
    }


# --- The charge.refunded webhook ------------------------------------------------------------


def charge_event(payment, amount_refunded: int, **fields):
    charge = {
        "id": payment.charge_id,
        "object": "charge",
        "amount": payment.amount,
        "amount_refunded": amount_refunded,
        "currency": payment.currency.lower(),
        "payment_intent": payment.payment_intent_id,
        "refunded": amount_refunded >= payment.amount,
    }
    return event("charge.refunded", charge, account=payment.account_id, **fields)


def test_charge_refunded_sets_the_refunded_amount_once(restaurants, payment):
    ours = restaurants[0]
    deliver(charge_event(payment, 400, created=1_000))
    assert refunds_state(ours, payment)["refunded"] == 400
    # The same state again (a new delivery id) and an older, smaller one: no change.
    deliver(charge_event(payment, 400, created=1_001))
    deliver(charge_event(payment, 100, created=900))
    assert refunds_state(ours, payment) == {"refunded": 400, "order": "placed", "refunds": []}
    # Made outside this app (Stripe's dashboard): audited once, as Stripe's.
    [audited] = audit_events(ours, "payment.refunded")
    assert audited.actor_type == "stripe"
    assert audited.changes == {"amount_refunded": {"before": 0, "after": 400}}


def test_charge_refunded_in_full_marks_the_order_refunded_once(restaurants, payment):
    ours = restaurants[0]
    full = charge_event(payment, payment.amount)
    deliver(full)
    deliver(full)  # Stripe repeats the very same event
    deliver(charge_event(payment, payment.amount))
    assert refunds_state(ours, payment)["order"] == "refunded"
    with tenant_context(ours):
        changes = StatusChange.objects.filter(order_id=payment.order_id, to_status="refunded")
        assert changes.count() == 1
        assert changes.get().actor_label == "stripe"


def test_our_own_refund_is_not_counted_again_by_its_webhook(roster, restaurants, payment):
    ours = restaurants[0]
    owner = roster[("ours", "owner")]
    assert refund(owner, payment.order_id, {"amount": 600, "reason": "x"}).status_code == 201
    deliver(charge_event(payment, 600))
    assert refunds_state(ours, payment)["refunded"] == 600
    assert [e.actor_type for e in audit_events(ours, "payment.refunded")] == ["staff"]


def test_charge_refunded_for_another_restaurant_leaves_ours_alone(
    restaurants, shops, payment, stripe_stand_in
):
    theirs = restaurants[1]
    their_payment = paid_order(stripe_stand_in, theirs, shops["theirs"])
    deliver(charge_event(their_payment, 300))
    # Their event names their account; one naming ours with their charge finds nothing.
    deliver({**charge_event(their_payment, 900), "account": payment.account_id})
    assert refunds_state(theirs, their_payment)["refunded"] == 300
    assert refunds_state(restaurants[0], payment)["refunded"] == 0


def test_a_pending_refund_holds_its_amount_until_stripe_settles_it(
    roster, restaurants, payment, stripe_stand_in, monkeypatch
):
    """A refund Stripe reports as pending counts against what remains; its later
    ``refund.updated`` settles it."""
    from payments import gateway

    real = gateway.create_refund

    def pending(**kwargs):
        return real(**kwargs)._replace(status="pending")

    monkeypatch.setattr(gateway, "create_refund", pending)
    ours = restaurants[0]
    owner = roster[("ours", "owner")]
    created = refund(owner, payment.order_id, {"amount": 800, "reason": "x"})
    assert created.status_code == 201
    assert created.json()["refund"]["status"] == "pending"
    assert created.json()["payment"]["remaining"] == payment.amount - 800
    too_much = refund(owner, payment.order_id, {"amount": payment.amount - 700, "reason": "y"})
    assert too_much.status_code == 409
    refund_id = created.json()["refund"]["refund_id"]
    settled = {"id": refund_id, "object": "refund", "status": "succeeded", "amount": 800}
    deliver(event("refund.updated", settled, account=payment.account_id))
    assert refunds_state(ours, payment) == {
        "refunded": 800,
        "order": "placed",
        "refunds": [(800, "succeeded")],
    }
    with tenant_context(ours):
        assert refund_remaining(fresh_payment(ours, payment)) == payment.amount - 800
    assert order_of(ours, payment).status == "placed"
