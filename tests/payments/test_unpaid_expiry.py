"""``expire-unpaid-orders`` asks Stripe how each card order's payment stands before it cancels
anything: a payment that went through places the order (the diner may never come back and its
webhook may have been missed), one under way is left for a later run, and so is one Stripe
cannot tell us about now. Only an order whose PaymentIntent is cancelled at Stripe, or that
never had one, is cancelled."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from orders.checkout_request import parse_checkout
from orders.models import Order, Status
from orders.periodic import expire_unpaid_orders
from orders.placement import place_order
from payments import gateway
from payments.models import Payment, Refund
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.payments.money_support import NOW, connect_cards, fresh_payment, order_of
from tests.payments.test_cancelled_orders import card_order
from tests.support.stripe_server import StripeStandIn, pay

pytestmark = pytest.mark.django_db


@pytest.fixture
def shops(restaurants, stripe_stand_in):
    ours, theirs = restaurants
    return {"ours": connect_cards(ours), "theirs": connect_cards(theirs)}


def abandoned(restaurant: Restaurant, ids: dict[str, Any]) -> Payment:
    """A card order whose diner went to Stripe's page 31 minutes ago and never came back."""
    payment = card_order(restaurant, ids)
    with tenant_context(restaurant):
        Order.objects.filter(pk=payment.order_id).update(
            created_at=timezone.now() - timedelta(minutes=31)
        )
    return payment


def expire(capture) -> str:
    with capture(execute=True):
        return expire_unpaid_orders()


def asked(stand_in: StripeStandIn, payment: Payment) -> list[Any]:
    """What the job asked Stripe about the intent (reads and cancellations)."""
    path = f"/v1/payment_intents/{payment.payment_intent_id}"
    return [r for r in stand_in.requests if r.path.startswith(path)]


def cancels(stand_in: StripeStandIn, payment: Payment) -> list[Any]:
    return stand_in.posts(f"/v1/payment_intents/{payment.payment_intent_id}/cancel")


def placed_changes(restaurant: Restaurant, payment: Payment) -> int:
    with tenant_context(restaurant):
        return (
            Order.objects.get(pk=payment.order_id)
            .status_changes.filter(to_status=Status.PLACED)
            .count()
        )


def test_a_paid_order_whose_diner_never_returned_is_placed_not_cancelled(
    restaurants, shops, stripe_stand_in, django_capture_on_commit_callbacks
):
    ours = restaurants[0]
    payment = abandoned(ours, shops["ours"])
    pay(stripe_stand_in, payment.payment_intent_id)  # no webhook ever reaches us

    outcome = expire(django_capture_on_commit_callbacks)

    assert outcome == "cancelled 0 unpaid orders, 1 found paid, 0 left for a later run"
    assert order_of(ours, payment).status == Status.PLACED
    assert placed_changes(ours, payment) == 1
    fresh = fresh_payment(ours, payment)
    assert (fresh.status, fresh.charge_id) == (
        Payment.Status.SUCCEEDED,
        stripe_stand_in.objects[payment.payment_intent_id]["latest_charge"],
    )
    [looked] = asked(stripe_stand_in, payment)
    assert (looked.method, looked.account) == ("GET", payment.account_id)
    assert cancels(stripe_stand_in, payment) == []
    assert stripe_stand_in.posts("/v1/refunds") == []
    with tenant_context(ours):
        assert not Refund.objects.exists()
    # Placed, it is no longer the job's business.
    assert expire(django_capture_on_commit_callbacks).startswith("cancelled 0 unpaid orders, 0")


def test_an_unpaid_order_is_cancelled_at_stripe_first_then_here(
    restaurants, shops, stripe_stand_in, django_capture_on_commit_callbacks
):
    ours = restaurants[0]
    payment = abandoned(ours, shops["ours"])

    outcome = expire(django_capture_on_commit_callbacks)

    assert outcome == "cancelled 1 unpaid orders, 0 found paid, 0 left for a later run"
    assert [(r.method, r.account) for r in asked(stripe_stand_in, payment)] == [
        ("GET", payment.account_id),
        ("POST", payment.account_id),
    ]
    [sent] = cancels(stripe_stand_in, payment)
    public_id = order_of(ours, payment).public_id
    assert sent.idempotency_key == f"payment-intent-cancel-{public_id}"
    assert stripe_stand_in.objects[payment.payment_intent_id]["status"] == "canceled"
    assert fresh_payment(ours, payment).status == Payment.Status.CANCELED
    cancelled = order_of(ours, payment)
    assert (cancelled.status, cancelled.cancel_reason) == (
        Status.CANCELLED,
        "Not paid within 30 minutes.",
    )


@pytest.mark.parametrize("status", ["processing", "requires_capture"])
def test_a_payment_still_under_way_is_left_for_a_later_run(
    restaurants, shops, stripe_stand_in, django_capture_on_commit_callbacks, status
):
    ours = restaurants[0]
    payment = abandoned(ours, shops["ours"])
    stripe_stand_in.set(payment.payment_intent_id, status=status)

    outcome = expire(django_capture_on_commit_callbacks)

    assert outcome == "cancelled 0 unpaid orders, 0 found paid, 1 left for a later run"
    assert order_of(ours, payment).status == Status.PENDING_PAYMENT
    assert cancels(stripe_stand_in, payment) == []
    assert stripe_stand_in.objects[payment.payment_intent_id]["status"] == status
    expected = Payment.Status.PROCESSING if status == "processing" else "requires_payment"
    assert fresh_payment(ours, payment).status == expected


def test_an_order_is_not_cancelled_while_stripe_cannot_be_reached(
    restaurants, shops, stripe_stand_in, django_capture_on_commit_callbacks, caplog
):
    ours = restaurants[0]
    unreachable = abandoned(ours, shops["ours"])
    stripe_stand_in.unreachable = True

    with caplog.at_level(logging.WARNING, logger="payments.services"):
        outcome = expire(django_capture_on_commit_callbacks)

    assert outcome == "cancelled 0 unpaid orders, 0 found paid, 1 left for a later run"
    assert order_of(ours, unreachable).status == Status.PENDING_PAYMENT
    assert fresh_payment(ours, unreachable).status == "requires_payment"
    assert any(
        getattr(record, "payment_intent_id", None) == unreachable.payment_intent_id
        for record in caplog.records
    )
    # Stripe answers again: the next run settles it.
    stripe_stand_in.unreachable = False
    assert expire(django_capture_on_commit_callbacks).startswith("cancelled 1 unpaid orders")
    assert order_of(ours, unreachable).status == Status.CANCELLED


def test_a_payment_made_while_the_job_looks_places_the_order(
    restaurants, shops, stripe_stand_in, monkeypatch, django_capture_on_commit_callbacks
):
    """The diner's card goes through between the job's look and its cancellation: Stripe
    refuses to cancel, the job looks again and places the order; nothing is refunded."""
    ours = restaurants[0]
    payment = abandoned(ours, shops["ours"])
    real = gateway.retrieve_payment_intent
    looks: list[str] = []

    def pays_right_after_the_first_look(**kwargs: Any) -> gateway.Intent:
        intent = real(**kwargs)
        looks.append(intent.status)
        if len(looks) == 1:
            pay(stripe_stand_in, payment.payment_intent_id)
        return intent

    monkeypatch.setattr(gateway, "retrieve_payment_intent", pays_right_after_the_first_look)

    outcome = expire(django_capture_on_commit_callbacks)

    assert looks == ["requires_payment_method", "succeeded"]
    assert outcome == "cancelled 0 unpaid orders, 1 found paid, 0 left for a later run"
    assert len(cancels(stripe_stand_in, payment)) == 1  # refused: it had succeeded
    assert order_of(ours, payment).status == Status.PLACED
    assert fresh_payment(ours, payment).status == Payment.Status.SUCCEEDED
    assert stripe_stand_in.posts("/v1/refunds") == []


def test_an_intent_stripe_canceled_already_cancels_the_order_without_asking_again(
    restaurants, shops, stripe_stand_in, django_capture_on_commit_callbacks
):
    ours = restaurants[0]
    payment = abandoned(ours, shops["ours"])
    stripe_stand_in.set(payment.payment_intent_id, status="canceled")

    assert expire(django_capture_on_commit_callbacks).startswith("cancelled 1 unpaid orders")

    assert cancels(stripe_stand_in, payment) == []
    assert fresh_payment(ours, payment).status == Payment.Status.CANCELED
    assert order_of(ours, payment).status == Status.CANCELLED


def test_an_order_without_a_payment_intent_is_cancelled_without_asking_stripe(
    restaurants, shops, stripe_stand_in, django_capture_on_commit_callbacks
):
    """Stripe was down at checkout and the diner left: no intent exists, nothing can be paid."""
    ours = restaurants[0]
    ids = shops["ours"]
    body = {
        "lines": [{"item_id": ids["burger"], "quantity": 1, "modifier_ids": [ids["regular"]]}],
        "name": "Ada",
        "email": "ada@example.com",
        "payment_method": "card",
    }
    with tenant_context(ours):
        order, _ = place_order(
            restaurant=ours,
            request=parse_checkout(body, ours.zone),
            idempotency_key="no-intent",
            now=NOW,
        )
        Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(minutes=31))

    assert expire(django_capture_on_commit_callbacks).startswith("cancelled 1 unpaid orders")

    with tenant_context(ours):
        assert Order.objects.get(pk=order.pk).status == Status.CANCELLED
    assert stripe_stand_in.requests == []


def test_a_success_for_another_amount_is_left_for_a_person(
    restaurants, shops, stripe_stand_in, django_capture_on_commit_callbacks, caplog
):
    """Money was taken, but not the order's total: neither placed nor cancelled (cancelling
    would hide a payment), logged for a person to look at."""
    ours = restaurants[0]
    payment = abandoned(ours, shops["ours"])
    pay(stripe_stand_in, payment.payment_intent_id)
    stripe_stand_in.set(payment.payment_intent_id, amount_received=payment.amount - 1)

    with caplog.at_level(logging.ERROR, logger="payments.services"):
        outcome = expire(django_capture_on_commit_callbacks)

    assert outcome == "cancelled 0 unpaid orders, 0 found paid, 1 left for a later run"
    assert order_of(ours, payment).status == Status.PENDING_PAYMENT
    assert cancels(stripe_stand_in, payment) == []
    assert any(record.levelno == logging.ERROR for record in caplog.records)


def test_each_restaurants_orders_are_asked_about_with_their_own_account(
    restaurants, shops, stripe_stand_in, django_capture_on_commit_callbacks
):
    ours, theirs = restaurants
    our_paid = abandoned(ours, shops["ours"])
    their_unpaid = abandoned(theirs, shops["theirs"])
    pay(stripe_stand_in, our_paid.payment_intent_id)

    outcome = expire(django_capture_on_commit_callbacks)

    assert outcome == "cancelled 1 unpaid orders, 1 found paid, 0 left for a later run"
    assert order_of(ours, our_paid).status == Status.PLACED
    assert order_of(theirs, their_unpaid).status == Status.CANCELLED
    assert {r.account for r in asked(stripe_stand_in, our_paid)} == {our_paid.account_id}
    assert {r.account for r in asked(stripe_stand_in, their_unpaid)} == {their_unpaid.account_id}
