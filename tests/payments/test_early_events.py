"""Events that arrive before the row they concern: Stripe may tell us about a PaymentIntent
(or a connected account) before the transaction that records it here has committed. Such an
event is acknowledged, kept unprocessed and waiting, and applied exactly once as soon as its
row appears; it is never marked processed without having been applied."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from django.db import connection
from django.db.models.signals import post_save
from django.test import Client
from django.urls import reverse

from nordkestrel.periodic import registered_jobs
from orders.models import Order, Status
from payments import gateway
from payments.models import Dispute, Payment, StripeAccount, WebhookEvent
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import api_client, make_restaurant, run_concurrently
from tests.payments.test_webhooks import (
    account_object,
    card_order,
    connect_cards,
    deliver,
    order_state,
    signed,
)
from tests.support.stripe_server import StripeStandIn, event, pay


@pytest.fixture
def shops(restaurants, stripe_stand_in):
    ours, theirs = restaurants
    return {"ours": connect_cards(ours), "theirs": connect_cards(theirs)}


def intent_object(stand_in: StripeStandIn, intent_id: str, **changes: Any) -> dict[str, Any]:
    return {**stand_in.objects[intent_id], **changes}


def events_before_the_row(monkeypatch, stand_in: StripeStandIn, build: Any) -> list[dict[str, Any]]:
    """Deliver the events ``build(intent_id)`` makes right after Stripe created the order's
    PaymentIntent and before our Payment row is written; returns what was delivered."""
    real = gateway.create_payment_intent
    delivered: list[dict[str, Any]] = []

    def then_events(**kwargs: Any) -> gateway.Intent:
        intent = real(**kwargs)
        for envelope in build(intent.id, kwargs["account_id"]):
            response = deliver(envelope)
            assert response.status_code == 200, response.content
            delivered.append(envelope)
        return intent

    monkeypatch.setattr(gateway, "create_payment_intent", then_events)
    return delivered


def stored(envelope: dict[str, Any], restaurant: Restaurant) -> WebhookEvent:
    """The stored event, read where a routed event is visible: its restaurant's context."""
    with tenant_context(restaurant):
        return WebhookEvent.objects.get(event_id=envelope["id"])


# --- a PaymentIntent's events before its Payment row ----------------------------------------


@pytest.mark.django_db
def test_a_success_before_the_payment_row_places_the_order_once_the_row_is_written(
    restaurants, shops, stripe_stand_in, monkeypatch, django_capture_on_commit_callbacks
):
    ours = restaurants[0]

    def paid(intent_id: str, account: str) -> list[dict[str, Any]]:
        return [
            event(
                "payment_intent.succeeded", dict(pay(stripe_stand_in, intent_id)), account=account
            )
        ]

    delivered = events_before_the_row(monkeypatch, stripe_stand_in, paid)
    with django_capture_on_commit_callbacks(execute=True):
        payment = card_order(ours, shops["ours"])

    [envelope] = delivered
    assert order_state(ours, payment) == {
        "order": Status.PLACED,
        "placed_changes": 1,
        "payment": Payment.Status.SUCCEEDED,
        "failure": "",
        "order_count": 1,
        "total_spent": payment.amount,
        "in_kitchen": True,
    }
    applied = stored(envelope, ours)
    assert applied.processed_at is not None
    assert applied.outcome == "payment succeeded"
    assert applied.waiting_for == ""
    # Stripe repeats it: nothing more happens.
    assert deliver(envelope).status_code == 200
    assert order_state(ours, payment)["placed_changes"] == 1


@pytest.mark.django_db
def test_an_event_whose_payment_is_not_written_yet_is_kept_waiting_not_processed(
    restaurants, shops, stripe_stand_in, monkeypatch
):
    """While the row is missing, the event is acknowledged (Stripe need not retry: it is
    ours to apply), stored unprocessed and says what it waits for."""

    def paid(intent_id: str, account: str) -> list[dict[str, Any]]:
        return [
            event(
                "payment_intent.succeeded", dict(pay(stripe_stand_in, intent_id)), account=account
            )
        ]

    delivered = events_before_the_row(monkeypatch, stripe_stand_in, paid)
    # The row's commit never wakes it.
    monkeypatch.setattr("payments.inbox.wake", lambda key, restaurant=None: 0)
    payment = card_order(restaurants[0], shops["ours"])

    [envelope] = delivered
    waiting = stored(envelope, restaurants[0])
    assert waiting.processed_at is None
    assert waiting.waiting_for == f"payment:{payment.payment_intent_id}"
    assert waiting.outcome.startswith("waiting")
    assert waiting.restaurant == restaurants[0]
    assert order_state(restaurants[0], payment)["order"] == Status.PENDING_PAYMENT


@pytest.mark.django_db
def test_every_event_before_the_row_applies_in_stripes_order_once_it_appears(
    restaurants, shops, stripe_stand_in, monkeypatch, django_capture_on_commit_callbacks
):
    """A declined attempt, the success, a partial refund made at Stripe and a dispute all
    arrive (in a shuffled order) before the Payment row: once it is written, each is applied,
    in the order Stripe created them."""
    ours = restaurants[0]
    now = int(time.time())

    def burst(intent_id: str, account: str) -> list[dict[str, Any]]:
        declined = intent_object(
            stripe_stand_in,
            intent_id,
            last_payment_error={"message": "Your card was declined."},
        )
        paid = dict(pay(stripe_stand_in, intent_id))
        charge = {
            "id": paid["latest_charge"],
            "object": "charge",
            "amount_refunded": 500,
            "payment_intent": intent_id,
        }
        dispute = {
            "id": "dp_early",
            "object": "dispute",
            "amount": paid["amount"],
            "currency": paid["currency"],
            "charge": paid["latest_charge"],
            "payment_intent": intent_id,
            "reason": "fraudulent",
            "status": "needs_response",
            "created": now + 20,
        }
        return [
            event("charge.refunded", charge, account=account, created=now + 10),
            event("payment_intent.succeeded", paid, account=account, created=now),
            event("charge.dispute.created", dispute, account=account, created=now + 20),
            event("payment_intent.payment_failed", declined, account=account, created=now - 30),
        ]

    delivered = events_before_the_row(monkeypatch, stripe_stand_in, burst)
    with django_capture_on_commit_callbacks(execute=True):
        payment = card_order(ours, shops["ours"])

    assert len(delivered) == 4
    assert all(stored(envelope, ours).processed_at is not None for envelope in delivered)
    state = order_state(ours, payment)
    assert (state["order"], state["placed_changes"], state["payment"]) == (
        Status.PLACED,
        1,
        Payment.Status.SUCCEEDED,
    )
    with tenant_context(ours):
        fresh = Payment.objects.get(pk=payment.pk)
        assert fresh.amount_refunded == 500
        assert fresh.failure_message == "Your card was declined."
        assert list(Dispute.objects.values_list("dispute_id", "status")) == [
            ("dp_early", "needs_response")
        ]
        applied = list(
            WebhookEvent.objects.filter(processed_at__isnull=False)
            .order_by("processed_at")
            .values_list("type", flat=True)
        )
    assert applied == [
        "payment_intent.payment_failed",
        "payment_intent.succeeded",
        "charge.refunded",
        "charge.dispute.created",
    ]


@pytest.mark.django_db
def test_a_cancellation_before_the_row_cancels_the_order_once_it_appears(
    restaurants, shops, stripe_stand_in, monkeypatch, django_capture_on_commit_callbacks
):
    ours = restaurants[0]

    def canceled(intent_id: str, account: str) -> list[dict[str, Any]]:
        obj = stripe_stand_in.set(intent_id, status="canceled")
        return [event("payment_intent.canceled", dict(obj), account=account)]

    events_before_the_row(monkeypatch, stripe_stand_in, canceled)
    with django_capture_on_commit_callbacks(execute=True):
        payment = card_order(ours, shops["ours"])

    state = order_state(ours, payment)
    assert (state["order"], state["payment"]) == (Status.CANCELLED, Payment.Status.CANCELED)


@pytest.mark.django_db
def test_an_intent_not_made_for_this_restaurant_is_not_waited_for(
    restaurants, shops, stripe_stand_in
):
    """A PaymentIntent on the account that no order of ours asked for (its metadata names no
    order of this restaurant) will never have a row here: acknowledged and done with."""
    account = shops["ours"]["account"]
    foreign = {
        "id": "pi_foreign",
        "object": "payment_intent",
        "amount": 1000,
        "amount_received": 1000,
        "currency": "eur",
        "status": "succeeded",
        "latest_charge": "ch_foreign",
        "metadata": {},
    }
    envelope = event("payment_intent.succeeded", foreign, account=account)

    assert deliver(envelope).status_code == 200

    done = stored(envelope, restaurants[0])
    assert done.processed_at is not None
    assert done.waiting_for == ""
    assert done.outcome == "no payment of this restaurant has this PaymentIntent"


@pytest.mark.usefixtures("transactional_db")
def test_a_success_delivered_while_the_payment_row_is_uncommitted_is_applied_once(
    stripe_stand_in,
):
    """The race itself: Stripe's event is handled by another process while the transaction
    writing the Payment row is still open (it cannot see the row). The event waits, and the
    row's commit applies it: the order is placed once."""
    ours = make_restaurant("ours")
    make_restaurant("theirs")
    ids = connect_cards(ours)
    answers: list[Any] = []

    def deliver_meanwhile(sender: Any, instance: Payment, created: bool, **kwargs: Any) -> None:
        if not created:
            return
        paid = pay(stripe_stand_in, instance.payment_intent_id)
        payload = json.dumps(
            event("payment_intent.succeeded", dict(paid), account=instance.account_id)
        ).encode()
        answers.extend(run_concurrently(lambda: Client().post(**signed(payload)).status_code))

    post_save.connect(deliver_meanwhile, sender=Payment)
    try:
        payment = card_order(ours, ids)
    finally:
        post_save.disconnect(deliver_meanwhile, sender=Payment)

    assert answers == [200]
    state = order_state(ours, payment)
    assert (state["order"], state["placed_changes"], state["payment"], state["order_count"]) == (
        Status.PLACED,
        1,
        Payment.Status.SUCCEEDED,
        1,
    )
    with tenant_context(ours):
        applied = WebhookEvent.objects.get()
    assert (applied.processed_at is not None, applied.outcome) == (True, "payment succeeded")


@pytest.mark.usefixtures("transactional_db")
def test_an_event_that_missed_the_row_looks_again_once_it_holds_the_rows_lock(
    stripe_stand_in, monkeypatch
):
    """The narrowest interleaving: the event misses the uncommitted row; the row then
    commits and its writer finds no event waiting yet; only then does the event take the
    row's lock. It must look again (and find the row), not mark itself waiting for a
    wake-up that has already happened."""
    from payments import event_handlers

    ours = make_restaurant("ours")
    make_restaurant("theirs")
    ids = connect_cards(ours)
    missed, committed = threading.Event(), threading.Event()
    answers: list[int] = []
    threads: list[threading.Thread] = []
    real_no_payment = event_handlers._no_payment

    def miss_then_pause(*args: Any) -> str:
        try:
            return real_no_payment(*args)
        finally:
            if threading.current_thread() is not threading.main_thread():
                missed.set()
                assert committed.wait(30)  # the row commits and its writer wakes meanwhile

    monkeypatch.setattr(event_handlers, "_no_payment", miss_then_pause)

    def deliver_meanwhile(sender: Any, instance: Payment, created: bool, **kwargs: Any) -> None:
        if not created:
            return
        paid = pay(stripe_stand_in, instance.payment_intent_id)
        payload = json.dumps(
            event("payment_intent.succeeded", dict(paid), account=instance.account_id)
        ).encode()

        def webhook() -> None:
            try:
                answers.append(Client().post(**signed(payload)).status_code)
            finally:
                connection.close()

        threads.append(threading.Thread(target=webhook))
        threads[0].start()
        assert missed.wait(30)  # the event has looked for the row before it commits

    post_save.connect(deliver_meanwhile, sender=Payment)
    try:
        payment = card_order(ours, ids)  # commits, and wakes no one: nothing waits yet
    finally:
        post_save.disconnect(deliver_meanwhile, sender=Payment)
    committed.set()
    threads[0].join(30)

    assert answers == [200]
    state = order_state(ours, payment)
    assert (state["order"], state["placed_changes"], state["payment"]) == (
        Status.PLACED,
        1,
        Payment.Status.SUCCEEDED,
    )
    with tenant_context(ours):
        applied = WebhookEvent.objects.get()
    assert (applied.processed_at is not None, applied.waiting_for) == (True, "")


@pytest.mark.usefixtures("transactional_db")
def test_a_row_that_commits_while_the_event_marks_itself_waiting_still_wakes_it(
    stripe_stand_in, monkeypatch
):
    """The other narrow interleaving: the event has looked twice (the second time holding the
    row's lock) and is about to commit itself as waiting when the row commits. The writer's
    wake-up waits for that lock, so it reads the list after the event is in it."""
    from payments import event_handlers, inbox

    ours = make_restaurant("ours")
    make_restaurant("theirs")
    ids = connect_cards(ours)
    missed_twice, waking = threading.Event(), threading.Event()
    misses: list[str] = []
    answers: list[int] = []
    threads: list[threading.Thread] = []
    real_no_payment, real_wake = event_handlers._no_payment, inbox.wake

    def miss_then_pause(*args: Any) -> str:
        try:
            return real_no_payment(*args)
        finally:
            if threading.current_thread() is not threading.main_thread():
                misses.append("missed")
                if len(misses) == 2:
                    missed_twice.set()
                    assert waking.wait(30)
                    time.sleep(0.3)  # lets the wake-up reach the list first, if it could

    def wake(key: str, restaurant: Restaurant | None = None) -> int:
        waking.set()
        return real_wake(key, restaurant)

    monkeypatch.setattr(event_handlers, "_no_payment", miss_then_pause)
    monkeypatch.setattr(inbox, "wake", wake)

    def deliver_meanwhile(sender: Any, instance: Payment, created: bool, **kwargs: Any) -> None:
        if not created:
            return
        paid = pay(stripe_stand_in, instance.payment_intent_id)
        payload = json.dumps(
            event("payment_intent.succeeded", dict(paid), account=instance.account_id)
        ).encode()

        def webhook() -> None:
            try:
                answers.append(Client().post(**signed(payload)).status_code)
            finally:
                connection.close()

        threads.append(threading.Thread(target=webhook))
        threads[0].start()
        assert missed_twice.wait(30)

    post_save.connect(deliver_meanwhile, sender=Payment)
    try:
        payment = card_order(ours, ids)
    finally:
        post_save.disconnect(deliver_meanwhile, sender=Payment)
    threads[0].join(30)

    assert answers == [200]
    assert misses == ["missed", "missed"]
    state = order_state(ours, payment)
    assert (state["order"], state["placed_changes"], state["payment"]) == (
        Status.PLACED,
        1,
        Payment.Status.SUCCEEDED,
    )
    with tenant_context(ours):
        applied = WebhookEvent.objects.get()
    assert (applied.processed_at is not None, applied.outcome) == (True, "payment succeeded")


# --- the connected account's events before its rows -------------------------------------------


@pytest.mark.django_db
def test_an_account_update_before_the_account_is_stored_applies_once_it_is(
    roster, restaurants, stripe_stand_in, monkeypatch, django_capture_on_commit_callbacks
):
    """Stripe announces the new account's state while the transaction that stores and routes
    it is still open; the event waits and is applied when that transaction commits."""
    ours = restaurants[0]
    real = gateway.create_account
    delivered: list[dict[str, Any]] = []

    def then_updated(**kwargs: Any) -> str:
        account_id = real(**kwargs)
        envelope = event(
            "account.updated",
            account_object(account_id, enabled=True, due=[], reason=None),
            account=account_id,
        )
        assert deliver(envelope).status_code == 200
        delivered.append(envelope)
        return account_id

    monkeypatch.setattr(gateway, "create_account", then_updated)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(roster[("ours", "owner")]).post(
            reverse("api-payments-account"), data="{}", content_type="application/json"
        )
    assert response.status_code == 201, response.content

    [envelope] = delivered
    with tenant_context(ours):
        account = StripeAccount.objects.get()
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (
        True,
        True,
        True,
    )
    applied = stored(envelope, ours)
    assert applied.processed_at is not None
    assert applied.restaurant == ours


# --- the periodic retry ---------------------------------------------------------------------


def test_the_waiting_events_job_is_registered():
    assert "apply-waiting-events" in dict(registered_jobs())


# The periodic job lists the waiting events across restaurants (tenant_bypass, a connection
# of its own): it sees committed rows only, so these tests commit theirs.


@pytest.mark.django_db(transaction=True)
def test_the_periodic_job_applies_an_event_whose_wake_up_was_lost(
    restaurants, shops, stripe_stand_in, monkeypatch
):
    """The process writing the row died before it could apply the waiting events (its
    on-commit step never ran): the periodic job applies them, once."""
    ours = restaurants[0]
    monkeypatch.setattr("payments.inbox.wake", lambda key, restaurant=None: 0)

    def paid(intent_id: str, account: str) -> list[dict[str, Any]]:
        return [
            event(
                "payment_intent.succeeded", dict(pay(stripe_stand_in, intent_id)), account=account
            )
        ]

    delivered = events_before_the_row(monkeypatch, stripe_stand_in, paid)
    payment = card_order(ours, shops["ours"])  # its wake-up is lost
    assert order_state(ours, payment)["order"] == Status.PENDING_PAYMENT

    job = dict(registered_jobs())["apply-waiting-events"]
    assert job() == "waiting events: 1 applied, 0 still waiting"
    assert job() == "waiting events: 0 applied, 0 still waiting"

    [envelope] = delivered
    assert stored(envelope, ours).processed_at is not None
    state = order_state(ours, payment)
    assert (state["order"], state["placed_changes"]) == (Status.PLACED, 1)
    with tenant_context(ours):
        assert Order.objects.get(pk=payment.order_id).status == Status.PLACED


@pytest.mark.django_db(transaction=True)
def test_an_event_that_waits_in_vain_stays_unprocessed(restaurants, shops, stripe_stand_in):
    """A refund of a charge no payment of ours has: nothing here can say it never will, so it
    waits (unprocessed, visible) and the periodic job counts it, without any effect."""
    account = shops["ours"]["account"]
    refund = {
        "id": "re_nobody",
        "object": "refund",
        "amount": 100,
        "charge": "ch_nobody",
        "payment_intent": "pi_nobody",
        "status": "succeeded",
        "metadata": {},
    }
    envelope = event("refund.updated", refund, account=account)
    assert deliver(envelope).status_code == 200

    job = dict(registered_jobs())["apply-waiting-events"]
    assert job() == "waiting events: 0 applied, 1 still waiting"
    waiting = stored(envelope, restaurants[0])
    assert (waiting.processed_at, waiting.waiting_for) == (None, "payment:pi_nobody")
