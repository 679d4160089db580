"""The diner's return from Stripe and the ``payment_intent.succeeded`` webhook race to place a
card order. Whichever comes first, or both at once, the diner pays once, the order is placed
once, the customer is counted once and gets one confirmation email."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.test import Client

from orders.models import Order, Status
from payments.models import Payment, WebhookEvent
from payments.services import payment_confirm_return
from tenants.context import tenant_context
from tests.factories import run_concurrently
from tests.payments.test_webhooks import (
    card_order,
    connect_cards,
    deliver,
    order_state,
    signed,
    succeeded_event,
)

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def shops(restaurants, stripe_stand_in):
    ours, theirs = restaurants
    return {"ours": connect_cards(ours), "theirs": connect_cards(theirs)}


@pytest.fixture
def payment(restaurants, shops):
    return card_order(restaurants[0], shops["ours"])


def diner_returns(restaurant, payment: Payment) -> str:
    with tenant_context(restaurant):
        order = Order.objects.get(pk=payment.order_id)
        returned = payment_confirm_return(order=order)
        assert returned is not None
        return returned.status


def assert_paid_once(restaurant, payment: Payment) -> None:
    assert order_state(restaurant, payment) == {
        "order": Status.PLACED,
        "placed_changes": 1,
        "payment": Payment.Status.SUCCEEDED,
        "failure": "",
        "order_count": 1,
        "total_spent": payment.amount,
        "in_kitchen": True,
    }
    with tenant_context(restaurant):
        assert Payment.objects.filter(order_id=payment.order_id).count() == 1
    assert [message.to for message in mail.outbox] == [["ada@example.com"]]
    with tenant_context(restaurant):  # the routed event is the restaurant's row
        stored = WebhookEvent.objects.get()
    assert stored.processed_at is not None
    assert stored.restaurant_id == restaurant.pk


def test_return_first_then_webhook(restaurants, stripe_stand_in, payment):
    ours = restaurants[0]
    envelope = succeeded_event(stripe_stand_in, payment)

    assert diner_returns(ours, payment) == Payment.Status.SUCCEEDED
    assert order_state(ours, payment)["order"] == Status.PLACED
    assert deliver(envelope).status_code == 200

    assert_paid_once(ours, payment)


def test_webhook_first_then_return(restaurants, stripe_stand_in, payment):
    ours = restaurants[0]
    envelope = succeeded_event(stripe_stand_in, payment)

    assert deliver(envelope).status_code == 200
    assert order_state(ours, payment)["order"] == Status.PLACED
    assert diner_returns(ours, payment) == Payment.Status.SUCCEEDED

    assert_paid_once(ours, payment)


def test_return_and_webhook_at_once(restaurants, stripe_stand_in, payment):
    ours = restaurants[0]
    payload = json.dumps(succeeded_event(stripe_stand_in, payment)).encode()

    results = run_concurrently(
        lambda: diner_returns(ours, payment),
        lambda: Client().post(**signed(payload)).status_code,
        lambda: diner_returns(ours, payment),
        lambda: Client().post(**signed(payload)).status_code,
    )

    assert results == [Payment.Status.SUCCEEDED, 200, Payment.Status.SUCCEEDED, 200]
    assert_paid_once(ours, payment)


def test_the_other_restaurants_order_is_untouched(restaurants, stripe_stand_in, shops, payment):
    ours, theirs = restaurants
    # "theirs" has its own card order; paying ours must leave it waiting.
    their_payment = card_order(theirs, shops["theirs"])
    envelope = succeeded_event(stripe_stand_in, payment)

    run_concurrently(lambda: diner_returns(ours, payment), lambda: deliver(envelope))

    assert_paid_once(ours, payment)
    their_state = order_state(theirs, their_payment)
    assert (their_state["order"], their_state["payment"], their_state["order_count"]) == (
        Status.PENDING_PAYMENT,
        Payment.Status.REQUIRES_PAYMENT,
        0,
    )
