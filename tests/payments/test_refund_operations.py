"""A refund is one operation however often it is sent, and what is refunded follows Stripe's
own figure: retries, lost answers, resubmitted forms, pending refunds and their webhooks in
any order, through the API, the order page and the Connect webhook endpoint."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from orders.models import Order, StatusChange
from payments import gateway
from payments.models import Payment, Refund, WebhookEvent
from payments.refunds import refund_remaining
from tenants.context import tenant_context
from tests.factories import api_client
from tests.payments.money_support import (
    audit_events,
    connect_cards,
    deliver,
    fresh_payment,
    order_of,
    paid_order,
)
from tests.payments.test_refunds import charge_event, page, refund, refund_form, refunds_state
from tests.support.stripe_server import event, sign_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def shops(restaurants, stripe_stand_in):
    ours, theirs = restaurants
    return {"ours": connect_cards(ours), "theirs": connect_cards(theirs)}


@pytest.fixture
def payment(restaurants, shops, stripe_stand_in):
    return paid_order(stripe_stand_in, restaurants[0], shops["ours"])


def remaining(restaurant, payment) -> int:
    with tenant_context(restaurant):
        return refund_remaining(fresh_payment(restaurant, payment))


def stripe_refunded(stand_in, payment) -> int:
    """What Stripe (the stand-in) has really refunded on the payment."""
    return stand_in.objects[payment.payment_intent_id].get("amount_refunded", 0)


def refund_event(refund_id: str, payment, status: str, amount: int, **fields: Any):
    obj = {
        "id": refund_id,
        "object": "refund",
        "status": status,
        "amount": amount,
        "payment_intent": payment.payment_intent_id,
        "charge": payment.charge_id,
        **fields,
    }
    return event("refund.updated", obj, account=payment.account_id)


def stripe_answers_pending(monkeypatch):
    """Stripe accepts refunds but reports them pending (as for some cards and banks)."""
    real = gateway.create_refund
    monkeypatch.setattr(
        gateway, "create_refund", lambda **kwargs: real(**kwargs)._replace(status="pending")
    )


def answer_lost(monkeypatch, times: int = 1):
    """Stripe makes the refund but its answer never arrives (a timeout after Stripe acted),
    ``times`` times; later calls get their answers."""
    real = gateway.create_refund
    calls = {"n": 0}

    def lost(**kwargs):
        calls["n"] += 1
        result = real(**kwargs)
        if calls["n"] <= times:
            raise gateway.GatewayError("Stripe could not complete the request.")
        return result

    monkeypatch.setattr(gateway, "create_refund", lost)
    return calls


# --- One operation, one refund ------------------------------------------------------------


def test_a_refund_needs_an_idempotency_key(roster, restaurants, payment, stripe_stand_in):
    response = api_client(roster[("ours", "owner")]).post(
        reverse("api-order-refunds", kwargs={"pk": payment.order_id}),
        data={"amount": 100, "reason": "Cold"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["attr"] == "idempotency_key"
    assert stripe_stand_in.posts("/v1/refunds") == []
    assert refunds_state(restaurants[0], payment)["refunds"] == []


@pytest.mark.parametrize("key", ["short", "with space 12", "newline-at-the-end\n", "é" * 10])
def test_a_malformed_idempotency_key_is_400(roster, restaurants, payment, stripe_stand_in, key):
    response = refund(
        roster[("ours", "owner")], payment.order_id, {"amount": 1, "reason": "x"}, key=key
    )
    assert response.status_code == 400
    assert response.json()["attr"] == "idempotency_key"
    assert stripe_stand_in.posts("/v1/refunds") == []


def test_the_same_operation_replays_its_refund(roster, restaurants, payment, stripe_stand_in):
    owner = roster[("ours", "owner")]
    first = refund(owner, payment.order_id, {"amount": 700, "reason": "Cold"}, key="op-refund-1")
    again = refund(owner, payment.order_id, {"amount": 700, "reason": "Cold"}, key="op-refund-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["refund"] == first.json()["refund"]
    assert len(stripe_stand_in.posts("/v1/refunds")) == 1
    assert stripe_refunded(stripe_stand_in, payment) == 700
    assert refunds_state(restaurants[0], payment)["refunds"] == [(700, "succeeded")]
    assert len(audit_events(restaurants[0], "payment.refunded")) == 1


def test_a_key_reused_for_another_refund_is_refused(roster, restaurants, payment, stripe_stand_in):
    owner = roster[("ours", "owner")]
    assert (
        refund(
            owner, payment.order_id, {"amount": 700, "reason": "a"}, key="op-reuse-1"
        ).status_code
        == 201
    )
    other = refund(owner, payment.order_id, {"amount": 800, "reason": "a"}, key="op-reuse-1")
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(stripe_stand_in.posts("/v1/refunds")) == 1


def test_two_refunds_of_the_same_amount_are_two_operations(
    roster, restaurants, payment, stripe_stand_in
):
    owner = roster[("ours", "owner")]
    for key in ("op-same-amount-1", "op-same-amount-2"):
        assert (
            refund(owner, payment.order_id, {"amount": 500, "reason": "x"}, key=key).status_code
            == 201
        )
    keys = [r.idempotency_key for r in stripe_stand_in.posts("/v1/refunds")]
    assert len(set(keys)) == 2
    assert stripe_refunded(stripe_stand_in, payment) == 1000
    assert refunds_state(restaurants[0], payment)["refunded"] == 1000


def test_keys_are_per_restaurant(roster, restaurants, shops, payment, stripe_stand_in):
    """The same Idempotency-Key in another restaurant is another operation."""
    theirs = paid_order(stripe_stand_in, restaurants[1], shops["theirs"])
    ours_made = refund(
        roster[("ours", "owner")],
        payment.order_id,
        {"amount": 300, "reason": "x"},
        key="op-shared-1",
    )
    theirs_made = refund(
        roster[("theirs", "owner")],
        theirs.order_id,
        {"amount": 300, "reason": "x"},
        key="op-shared-1",
    )
    assert (ours_made.status_code, theirs_made.status_code) == (201, 201)
    keys = {r.idempotency_key for r in stripe_stand_in.posts("/v1/refunds")}
    assert len(keys) == 2
    assert refunds_state(restaurants[1], theirs)["refunds"] == [(300, "succeeded")]


def test_a_lost_answer_keeps_the_refund_pending_and_a_retry_settles_it_once(
    roster, restaurants, payment, stripe_stand_in, monkeypatch
):
    """Stripe refunded but its answer was lost: not failed (the money may be back with the
    diner), kept through the API's error answer, holding its amount; the retry with the same
    key asks Stripe again under the same idempotency key and refunds nothing twice."""
    ours = restaurants[0]
    owner = roster[("ours", "owner")]
    answer_lost(monkeypatch)
    first = refund(owner, payment.order_id, {"amount": 1000, "reason": "Cold"}, key="op-lost-1")
    assert first.status_code == 502
    assert first.json()["code"] == "refund_unconfirmed"
    assert refunds_state(ours, payment)["refunds"] == [(1000, "pending")]
    assert remaining(ours, payment) == payment.amount - 1000
    # The rest can be refunded, not more: the unconfirmed refund holds its amount.
    too_much = refund(owner, payment.order_id, {"amount": payment.amount, "reason": "All"})
    assert too_much.status_code == 409

    again = refund(owner, payment.order_id, {"amount": 1000, "reason": "Cold"}, key="op-lost-1")
    assert again.status_code == 200, again.content
    assert again.json()["refund"]["status"] == "succeeded"
    posts = stripe_stand_in.posts("/v1/refunds")
    assert len({r.idempotency_key for r in posts}) == 1
    assert stripe_refunded(stripe_stand_in, payment) == 1000
    assert refunds_state(ours, payment) == {
        "refunded": 1000,
        "order": "placed",
        "refunds": [(1000, "succeeded")],
    }
    [audited] = audit_events(ours, "payment.refunded")
    assert audited.actor_id == owner.pk


def test_a_lost_answer_is_settled_by_the_refunds_webhook(
    roster, restaurants, payment, stripe_stand_in, monkeypatch
):
    """Nobody retries: Stripe's event names the operation in the refund's metadata, and the
    pending refund is recorded from it, audited as the staff member's."""
    ours = restaurants[0]
    manager = roster[("ours", "manager")]
    answer_lost(monkeypatch)
    assert refund(manager, payment.order_id, {"amount": 900, "reason": "Late"}).status_code == 502
    made = next(o for o in stripe_stand_in.objects.values() if o.get("object") == "refund")
    deliver(event("refund.created", made, account=payment.account_id))
    assert refunds_state(ours, payment)["refunds"] == [(900, "succeeded")]
    with tenant_context(ours):
        assert Refund.objects.get().refund_id == made["id"]
    assert refunds_state(ours, payment)["refunded"] == 900
    assert remaining(ours, payment) == payment.amount - 900
    [audited] = audit_events(ours, "payment.refunded")
    assert audited.actor_id == manager.pk


def test_a_definite_refusal_fails_the_refund_and_its_replay_asks_stripe_no_more(
    roster, restaurants, payment, stripe_stand_in
):
    stripe_stand_in.fail(402, "invalid_request_error", "Insufficient funds in the account.")
    owner = roster[("ours", "owner")]
    first = refund(owner, payment.order_id, {"amount": 700, "reason": "x"}, key="op-refused-1")
    assert first.status_code == 502
    assert refunds_state(restaurants[0], payment)["refunds"] == [(700, "failed")]
    again = refund(owner, payment.order_id, {"amount": 700, "reason": "x"}, key="op-refused-1")
    assert again.status_code == 502
    assert "Insufficient funds" in again.json()["detail"]
    assert len(stripe_stand_in.posts("/v1/refunds")) == 1
    assert remaining(restaurants[0], payment) == payment.amount


def test_a_resubmitted_refund_form_refunds_once(roster, restaurants, payment, stripe_stand_in):
    client, drawn = page(roster[("ours", "manager")], payment.order_id)
    url = reverse("dashboard:order-refund", args=[payment.order_id])
    form = {"amount": "10.00", "reason": "Cold fries", **refund_form(drawn)}
    first = client.post(url, form)
    second = client.post(url, form)
    assert (first.status_code, second.status_code) == (303, 303)
    assert len(stripe_stand_in.posts("/v1/refunds")) == 1
    assert refunds_state(restaurants[0], payment)["refunds"] == [(1000, "succeeded")]
    # A page drawn again carries a new operation: another refund.
    _, redrawn = page(roster[("ours", "manager")], payment.order_id)
    assert refund_form(redrawn) != refund_form(drawn)


@pytest.mark.parametrize("operation", [None, "", "not-hex", "0123456789abcdef0123456789abcdef\n"])
def test_a_refund_form_without_its_operation_sends_nothing(
    roster, restaurants, payment, stripe_stand_in, operation
):
    client, _ = page(roster[("ours", "manager")], payment.order_id)
    form = {"amount": "1.00", "reason": "x"}
    if operation is not None:
        form["operation"] = operation
    url = reverse("dashboard:order-refund", args=[payment.order_id])
    response = client.post(url, form, follow=True)
    assert "this form is out of date" in response.content.decode()
    assert stripe_stand_in.posts("/v1/refunds") == []


def test_the_order_page_shows_an_unconfirmed_refund_as_pending(
    roster, restaurants, payment, stripe_stand_in, monkeypatch
):
    answer_lost(monkeypatch)
    client, drawn = page(roster[("ours", "owner")], payment.order_id)
    url = reverse("dashboard:order-refund", args=[payment.order_id])
    response = client.post(
        url, {"amount": "5.00", "reason": "x", **refund_form(drawn)}, follow=True
    )
    html = response.content.decode()
    assert "Stripe did not confirm the refund" in html
    assert refunds_state(restaurants[0], payment)["refunds"] == [(500, "pending")]


# --- The two steps around Stripe's call ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_stripe_is_asked_with_the_refund_committed_and_no_row_locked(stripe_stand_in, monkeypatch):
    """While Stripe is being asked, the reservation is committed (another connection sees it)
    and neither the payment nor the order is locked (another connection takes both at once)."""
    from staff.roles import Role
    from tests.factories import make_restaurant, make_staff

    ours = make_restaurant("ours")
    make_restaurant("theirs")
    ids = connect_cards(ours)
    owner = make_staff(ours, Role.OWNER)
    payment = paid_order(stripe_stand_in, ours, ids)
    real = gateway.create_refund
    seen: dict[str, Any] = {}

    def look_from_elsewhere() -> None:
        try:
            with tenant_context(ours):
                seen["reserved"] = list(Refund.objects.values_list("amount", "status", "refund_id"))
                Payment.objects.select_for_update(nowait=True).get(pk=payment.pk)
                Order.objects.select_for_update(nowait=True).get(pk=payment.order_id)
                seen["locked"] = False
        except Exception as error:
            seen["locked"] = repr(error)
        finally:
            connection.close()

    def observed(**kwargs):
        thread = threading.Thread(target=look_from_elsewhere)
        thread.start()
        thread.join(30)
        return real(**kwargs)

    monkeypatch.setattr(gateway, "create_refund", observed)
    response = refund(owner, payment.order_id, {"amount": 600, "reason": "x"})
    assert response.status_code == 201, response.content
    assert seen == {"reserved": [(600, "pending", "")], "locked": False}


@pytest.mark.django_db(transaction=True)
def test_a_refund_event_arriving_while_stripe_answers_is_applied_once(stripe_stand_in, monkeypatch):
    """Stripe's refund.updated lands before our request records Stripe's answer: it finds the
    refund by the key in its metadata, and the answer arriving after it changes nothing."""
    from staff.roles import Role
    from tests.factories import make_restaurant, make_staff

    ours = make_restaurant("ours")
    make_restaurant("theirs")
    ids = connect_cards(ours)
    owner = make_staff(ours, Role.OWNER)
    payment = paid_order(stripe_stand_in, ours, ids)
    real = gateway.create_refund
    answers: list[int] = []

    def with_event_first(**kwargs):
        result = real(**kwargs)
        settled = dict(stripe_stand_in.objects[result.id])
        thread = threading.Thread(
            target=lambda: answers.append(
                _deliver_status(
                    event("refund.updated", settled, account=payment.account_id), own_thread=True
                )
            )
        )
        thread.start()
        thread.join(30)
        return result._replace(status="pending")  # our (older) answer still said pending

    monkeypatch.setattr(gateway, "create_refund", with_event_first)
    response = refund(owner, payment.order_id, {"amount": 1000, "reason": "x"})
    assert response.status_code == 201, response.content
    assert answers == [200]
    assert refunds_state(ours, payment)["refunds"] == [(1000, "succeeded")]
    assert remaining(ours, payment) == payment.amount - 1000
    [audited] = audit_events(ours, "payment.refunded")
    assert audited.actor_id == owner.pk
    with tenant_context(ours):  # the routed event is the restaurant's row
        assert WebhookEvent.objects.get().processed_at is not None


def _deliver_status(envelope: dict[str, Any], *, own_thread: bool = False) -> int:
    """Deliver a signed event and return the status Stripe would see (500 included)."""
    payload = json.dumps(envelope).encode()
    try:
        return (
            Client(raise_request_exception=False)
            .post(
                reverse("stripe-webhook-connect"),
                data=payload,
                content_type="application/json",
                headers={"Stripe-Signature": sign_event(payload, "whsec_connect_test")},
            )
            .status_code
        )
    finally:
        if own_thread:
            connection.close()


def test_a_refund_event_without_our_key_waits_while_a_refund_is_unconfirmed(
    roster, restaurants, payment, stripe_stand_in, monkeypatch
):
    """An event for a refund we cannot tell from our unconfirmed one is not applied as
    "not ours": the webhook fails (Stripe delivers it again), and once the refund is
    settled the redelivery is processed."""
    ours = restaurants[0]
    owner = roster[("ours", "owner")]
    answer_lost(monkeypatch)
    assert (
        refund(owner, payment.order_id, {"amount": 400, "reason": "x"}, key="op-wait-1").status_code
        == 502
    )
    made = next(o for o in stripe_stand_in.objects.values() if o.get("object") == "refund")
    anonymous = {k: v for k, v in made.items() if k != "metadata"}
    envelope = event(
        "refund.updated", {**anonymous, "status": "succeeded"}, account=payment.account_id
    )
    assert _deliver_status(envelope) == 500
    with tenant_context(ours):
        assert WebhookEvent.objects.get(event_id=envelope["id"]).processed_at is None
    assert (
        refund(owner, payment.order_id, {"amount": 400, "reason": "x"}, key="op-wait-1").status_code
        == 200
    )
    assert _deliver_status(envelope) == 200
    with tenant_context(ours):
        assert WebhookEvent.objects.get(event_id=envelope["id"]).processed_at is not None
    assert refunds_state(ours, payment)["refunds"] == [(400, "succeeded")]


# --- Stripe's refunded figure ------------------------------------------------------------------


def test_a_pending_refund_is_not_subtracted_twice_once_stripe_counts_it(
    roster, restaurants, payment, stripe_stand_in, monkeypatch
):
    ours = restaurants[0]
    stripe_answers_pending(monkeypatch)
    assert (
        refund(
            roster[("ours", "owner")], payment.order_id, {"amount": 1000, "reason": "x"}
        ).status_code
        == 201
    )
    assert remaining(ours, payment) == payment.amount - 1000
    deliver(charge_event(payment, 1000))  # Stripe counts the pending refund at once
    assert remaining(ours, payment) == payment.amount - 1000
    assert refunds_state(ours, payment)["refunded"] == 1000
    assert audit_events(ours, "payment.refunded")[-1].actor_type == "staff"


def test_a_failed_full_refund_gives_the_order_its_status_back(
    roster, restaurants, payment, stripe_stand_in, monkeypatch
):
    """A full refund Stripe reports pending moves the order to refunded (Stripe counts it);
    when it fails, Stripe's figure drops again and the order is placed again, counted for
    the customer again; the whole amount can be refunded again."""
    ours = restaurants[0]
    stripe_answers_pending(monkeypatch)
    owner = roster[("ours", "owner")]
    created = refund(owner, payment.order_id, {"amount": payment.amount, "reason": "Lost"})
    assert created.status_code == 201
    assert created.json()["order_status"] == "refunded"
    refund_id = created.json()["refund"]["refund_id"]
    made = stripe_stand_in.objects[refund_id]["created"]
    deliver(charge_event(payment, payment.amount, created=made + 1))
    assert order_of(ours, payment).status == "refunded"

    deliver(
        refund_event(
            refund_id, payment, "failed", payment.amount, failure_reason="lost_or_stolen_card"
        )
        | {"created": made + 60}
    )
    state = refunds_state(ours, payment)
    assert state == {"refunded": 0, "order": "placed", "refunds": [(payment.amount, "failed")]}
    with tenant_context(ours):
        back = StatusChange.objects.filter(order_id=payment.order_id).order_by("-at", "-id")[0]
        customer = Customer.objects.get(orders__pk=payment.order_id)
        failed = Refund.objects.get()
    assert (back.from_status, back.to_status, back.actor_label) == ("refunded", "placed", "stripe")
    assert (customer.order_count, customer.total_spent) == (1, payment.amount)
    assert failed.failure_message == "lost_or_stolen_card"
    assert remaining(ours, payment) == payment.amount

    # Stripe's later charge event agrees; an older one changes nothing.
    deliver(charge_event(payment, 0, created=made + 61))
    deliver(charge_event(payment, payment.amount, created=made + 1))
    assert refunds_state(ours, payment)["refunded"] == 0
    assert order_of(ours, payment).status == "placed"


def test_a_succeeded_refund_that_fails_later_is_counted_out(
    roster, restaurants, payment, stripe_stand_in
):
    ours = restaurants[0]
    created = refund(roster[("ours", "owner")], payment.order_id, {"amount": 1200, "reason": "x"})
    refund_id = created.json()["refund"]["refund_id"]
    assert refunds_state(ours, payment)["refunded"] == 1200
    made = stripe_stand_in.objects[refund_id]["created"]
    deliver(refund_event(refund_id, payment, "failed", 1200) | {"created": made + 30})
    assert refunds_state(ours, payment) == {
        "refunded": 0,
        "order": "placed",
        "refunds": [(1200, "failed")],
    }
    # A late "succeeded" for it does not bring it back.
    deliver(refund_event(refund_id, payment, "succeeded", 1200) | {"created": made + 10})
    assert refunds_state(ours, payment)["refunds"] == [(1200, "failed")]


def test_a_pending_refund_settling_after_a_charge_event_changes_no_total(
    roster, restaurants, payment, stripe_stand_in, monkeypatch
):
    """charge.refunded and refund.updated interleaved with a pending refund, and a refund
    made in Stripe's dashboard: every figure is counted once."""
    ours = restaurants[0]
    stripe_answers_pending(monkeypatch)
    created = refund(roster[("ours", "owner")], payment.order_id, {"amount": 800, "reason": "x"})
    refund_id = created.json()["refund"]["refund_id"]
    made = stripe_stand_in.objects[refund_id]["created"]
    # Someone refunds 500 more in Stripe's dashboard: Stripe's figure counts both.
    deliver(charge_event(payment, 1300, created=made + 5))
    assert refunds_state(ours, payment)["refunded"] == 1300
    assert remaining(ours, payment) == payment.amount - 1300
    deliver(refund_event(refund_id, payment, "succeeded", 800) | {"created": made + 6})
    assert refunds_state(ours, payment)["refunded"] == 1300
    assert remaining(ours, payment) == payment.amount - 1300
    actors = [e.actor_type for e in audit_events(ours, "payment.refunded")]
    assert actors == ["staff", "stripe"]  # ours, then the dashboard's 500 as Stripe's


# --- Unconfirmed refunds nobody retries ---------------------------------------------------------


def age_refunds(restaurant, minutes: int, **which: Any) -> None:
    with tenant_context(restaurant):
        Refund.objects.filter(**which).update(
            created_at=timezone.now() - timedelta(minutes=minutes)
        )


def test_the_periodic_job_settles_a_refund_whose_request_never_reached_stripe(
    roster, restaurants, payment, stripe_stand_in, monkeypatch
):
    from nordkestrel.periodic import registered_jobs
    from payments.periodic import settle_unconfirmed_refunds

    ours = restaurants[0]
    owner = roster[("ours", "owner")]
    real = gateway.create_refund

    def unreachable(**kwargs):
        raise gateway.GatewayError("Could not connect to Stripe.")

    monkeypatch.setattr(gateway, "create_refund", unreachable)
    assert refund(owner, payment.order_id, {"amount": 650, "reason": "x"}).status_code == 502
    monkeypatch.setattr(gateway, "create_refund", real)
    assert settle_unconfirmed_refunds() == "settled 0 unconfirmed refunds, 0 still unconfirmed"
    assert stripe_stand_in.posts("/v1/refunds") == []  # too recent: may still be in flight

    age_refunds(ours, 10)
    assert "settle-unconfirmed-refunds" in dict(registered_jobs())
    assert settle_unconfirmed_refunds() == "settled 1 unconfirmed refunds, 0 still unconfirmed"
    assert stripe_refunded(stripe_stand_in, payment) == 650
    assert refunds_state(ours, payment) == {
        "refunded": 650,
        "order": "placed",
        "refunds": [(650, "succeeded")],
    }
    [audited] = audit_events(ours, "payment.refunded")
    assert audited.actor_id == owner.pk
    # Settled: the next run asks nothing.
    settle_unconfirmed_refunds()
    assert len(stripe_stand_in.posts("/v1/refunds")) == 1


def test_the_periodic_job_finds_a_refund_stripe_made_and_leaves_old_ones_to_a_person(
    roster, restaurants, payment, stripe_stand_in, monkeypatch, caplog
):
    """Two refunds Stripe made whose answers were lost: the recent one is found made (Stripe
    replays it) and recorded; the one older than Stripe keeps its key is not asked again
    (asking could refund twice) but logged, and keeps holding its amount."""
    from payments.periodic import settle_unconfirmed_refunds

    ours = restaurants[0]
    owner = roster[("ours", "owner")]
    answer_lost(monkeypatch, times=2)
    assert refund(owner, payment.order_id, {"amount": 300, "reason": "a"}).status_code == 502
    assert refund(owner, payment.order_id, {"amount": 200, "reason": "b"}).status_code == 502
    age_refunds(ours, 24 * 60, amount=300)
    age_refunds(ours, 10, amount=200)
    assert settle_unconfirmed_refunds() == "settled 1 unconfirmed refunds, 1 still unconfirmed"
    assert "past its idempotency key's lifetime" in caplog.text
    assert sorted(refunds_state(ours, payment)["refunds"]) == [(200, "succeeded"), (300, "pending")]
    assert stripe_refunded(stripe_stand_in, payment) == 500  # each made once
    assert len(stripe_stand_in.posts("/v1/refunds")) == 3
    assert remaining(ours, payment) == payment.amount - 500
