"""A cancelled card order cannot be charged: cancelling it cancels its PaymentIntent, a payment
that still goes through is refunded at once, and abandoned unpaid orders expire."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from nordkestrel.periodic import registered_jobs
from orders.checkout_request import parse_checkout
from orders.models import Order, Status
from orders.periodic import expire_unpaid_orders
from orders.placement import place_order
from orders.slots import SlotFull
from payments.models import Payment, Refund
from payments.services import payment_start
from promotions.models import Promotion
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import api_client
from tests.payments.money_support import (
    NOW,
    audit_events,
    connect_cards,
    deliver,
    fresh_payment,
    order_of,
)
from tests.support.stripe_server import event, pay

pytestmark = pytest.mark.django_db


@pytest.fixture
def shops(restaurants, stripe_stand_in):
    ours, theirs = restaurants
    return {"ours": connect_cards(ours), "theirs": connect_cards(theirs)}


_keys = iter(range(1, 100_000))


def card_order(restaurant: Restaurant, ids: dict[str, Any], **fields: Any) -> Payment:
    """A card order waiting for its payment, with its PaymentIntent created at Stripe."""
    body = {
        "lines": [{"item_id": ids["burger"], "quantity": 1, "modifier_ids": [ids["regular"]]}],
        "name": "Ada",
        "email": "ada@example.com",
        "payment_method": "card",
        **fields,
    }
    with tenant_context(restaurant):
        order, _ = place_order(
            restaurant=restaurant,
            request=parse_checkout(body, restaurant.zone),
            idempotency_key=f"cancel-{next(_keys)}",
            now=NOW,
        )
        assert order.status == Status.PENDING_PAYMENT
        return payment_start(order=order)


def cancel(member, payment: Payment, capture) -> Any:
    """Staff cancel the order through the API; what runs after the commit runs."""
    with capture(execute=True):
        response = api_client(member).post(
            reverse("api-order-cancel", kwargs={"pk": payment.order_id}),
            data={"reason": "Out of burgers"},
            content_type="application/json",
        )
    assert response.status_code == 200, response.content
    return response


def intent_event(stand_in, payment: Payment, event_type: str, **changes: Any) -> dict[str, Any]:
    obj = {**stand_in.objects[payment.payment_intent_id], **changes}
    return event(event_type, obj, account=payment.account_id)


def cancels(stand_in, payment: Payment) -> list[Any]:
    return stand_in.posts(f"/v1/payment_intents/{payment.payment_intent_id}/cancel")


# --- Cancelling an order that waits for its payment -----------------------------------------


def test_cancelling_an_unpaid_card_order_cancels_its_payment_intent(
    roster, restaurants, shops, stripe_stand_in, django_capture_on_commit_callbacks
):
    ours = restaurants[0]
    payment = card_order(ours, shops["ours"])
    cancel(roster[("ours", "manager")], payment, django_capture_on_commit_callbacks)
    [sent] = cancels(stripe_stand_in, payment)
    assert sent.account == payment.account_id
    with tenant_context(ours):
        public_id = Order.objects.get(pk=payment.order_id).public_id
    assert sent.idempotency_key == f"payment-intent-cancel-{public_id}"
    assert stripe_stand_in.objects[payment.payment_intent_id]["status"] == "canceled"
    assert fresh_payment(ours, payment).status == "canceled"
    assert order_of(ours, payment).status == "cancelled"

    # Stripe's own event about it, and a late decline, change nothing more.
    deliver(intent_event(stripe_stand_in, payment, "payment_intent.canceled"))
    deliver(
        intent_event(
            stripe_stand_in,
            payment,
            "payment_intent.payment_failed",
            status="requires_payment_method",
            last_payment_error={"message": "Your card was declined."},
        )
    )
    late = fresh_payment(ours, payment)
    assert (late.status, late.failure_message) == ("canceled", "")
    assert len(cancels(stripe_stand_in, payment)) == 1


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("payment_intent.payment_failed", "requires_payment_method"),
        ("payment_intent.processing", "processing"),
    ],
)
def test_a_canceled_payment_stays_canceled(restaurants, shops, stripe_stand_in, event_type, status):
    """Stripe's events arrive in any order: a late failure or "processing" never reopens a
    payment Stripe canceled."""
    ours = restaurants[0]
    payment = card_order(ours, shops["ours"])
    now = int(timezone.now().timestamp())
    canceled = intent_event(stripe_stand_in, payment, "payment_intent.canceled", status="canceled")
    deliver({**canceled, "created": now})
    late = intent_event(stripe_stand_in, payment, event_type, status=status)
    deliver({**late, "created": now - 30})
    assert fresh_payment(ours, payment).status == "canceled"
    assert order_of(ours, payment).status == "cancelled"


def test_a_payment_that_goes_through_after_the_cancellation_is_refunded_in_full(
    roster, restaurants, shops, stripe_stand_in, django_capture_on_commit_callbacks
):
    """The diner's card went through just before staff cancelled: Stripe refuses to cancel
    the intent, and its payment_intent.succeeded refunds the whole amount at once, audited
    as Stripe's; the order stays cancelled, and a repeated event refunds nothing more."""
    ours = restaurants[0]
    payment = card_order(ours, shops["ours"])
    paid = pay(stripe_stand_in, payment.payment_intent_id)
    cancel(roster[("ours", "manager")], payment, django_capture_on_commit_callbacks)
    assert len(cancels(stripe_stand_in, payment)) == 1  # refused: the intent succeeded
    assert fresh_payment(ours, payment).status == "requires_payment"

    succeeded = event("payment_intent.succeeded", dict(paid), account=payment.account_id)
    deliver(succeeded)
    deliver(event("payment_intent.succeeded", dict(paid), account=payment.account_id))

    [sent] = stripe_stand_in.posts("/v1/refunds")
    assert (sent.form["payment_intent"], sent.form["amount"]) == (
        payment.payment_intent_id,
        str(payment.amount),
    )
    assert sent.account == payment.account_id
    assert stripe_stand_in.objects[payment.payment_intent_id]["amount_refunded"] == payment.amount
    settled = fresh_payment(ours, payment)
    assert (settled.status, settled.amount_refunded) == ("succeeded", payment.amount)
    assert order_of(ours, payment).status == "cancelled"
    with tenant_context(ours):
        assert list(Refund.objects.values_list("amount", "status")) == [
            (payment.amount, "succeeded")
        ]
    [audited] = audit_events(ours, "payment.refunded")
    assert audited.actor_type == "stripe"
    assert audited.changes["amount"]["after"] == payment.amount
    # Stripe's charge.refunded for it agrees and leaves the order cancelled.
    charge = {
        "id": settled.charge_id,
        "object": "charge",
        "amount_refunded": payment.amount,
        "payment_intent": payment.payment_intent_id,
    }
    deliver(event("charge.refunded", charge, account=payment.account_id))
    assert order_of(ours, payment).status == "cancelled"
    assert len(audit_events(ours, "payment.refunded")) == 1


def test_an_order_paid_then_cancelled_by_staff_is_not_refunded_automatically(
    roster, restaurants, shops, stripe_stand_in, django_capture_on_commit_callbacks
):
    """Cancelling an order that was paid is the staff's business: the money goes back only
    when they refund it, however often Stripe repeats its success."""
    ours = restaurants[0]
    payment = card_order(ours, shops["ours"])
    paid = pay(stripe_stand_in, payment.payment_intent_id)
    deliver(event("payment_intent.succeeded", dict(paid), account=payment.account_id))
    assert order_of(ours, payment).status == "placed"
    cancel(roster[("ours", "manager")], payment, django_capture_on_commit_callbacks)
    deliver(event("payment_intent.succeeded", dict(paid), account=payment.account_id))
    assert cancels(stripe_stand_in, payment) == []
    assert stripe_stand_in.posts("/v1/refunds") == []
    assert order_of(ours, payment).status == "cancelled"


# --- Abandoned unpaid orders ---------------------------------------------------------------


def age(restaurant: Restaurant, payment: Payment, minutes: int) -> None:
    with tenant_context(restaurant):
        Order.objects.filter(pk=payment.order_id).update(
            created_at=timezone.now() - timedelta(minutes=minutes)
        )


def test_the_expiry_job_is_registered():
    assert "expire-unpaid-orders" in dict(registered_jobs())


def test_unpaid_card_orders_expire_after_the_set_minutes(
    restaurants, shops, stripe_stand_in, settings, django_capture_on_commit_callbacks
):
    ours, theirs = restaurants
    settings.UNPAID_ORDER_MINUTES = 30
    abandoned = card_order(ours, shops["ours"])
    recent = card_order(ours, shops["ours"])
    paid = card_order(ours, shops["ours"])
    elsewhere = card_order(theirs, shops["theirs"])
    for payment in (abandoned, paid, elsewhere):
        age(ours if payment is not elsewhere else theirs, payment, 31)
    age(ours, recent, 29)
    pay(stripe_stand_in, paid.payment_intent_id)
    deliver(
        event(
            "payment_intent.succeeded",
            dict(stripe_stand_in.objects[paid.payment_intent_id]),
            account=paid.account_id,
        )
    )

    with django_capture_on_commit_callbacks(execute=True):
        outcome = expire_unpaid_orders()

    assert outcome == "cancelled 2 unpaid orders, 0 found paid, 0 left for a later run"
    assert order_of(ours, abandoned).status == "cancelled"
    assert order_of(theirs, elsewhere).status == "cancelled"
    assert order_of(ours, recent).status == "pending_payment"
    assert order_of(ours, paid).status == "placed"
    with tenant_context(ours):
        reason = Order.objects.get(pk=abandoned.order_id).cancel_reason
    assert reason == "Not paid within 30 minutes."
    assert fresh_payment(ours, abandoned).status == "canceled"
    assert stripe_stand_in.objects[abandoned.payment_intent_id]["status"] == "canceled"
    assert {
        r.account
        for r in stripe_stand_in.posts("/v1/payment_intents/")
        if r.path.endswith("/cancel")
    } == {
        abandoned.account_id,
        elsewhere.account_id,
    }
    [audited] = audit_events(ours, "order.cancelled")
    assert audited.actor_type == "scheduler"
    # A second run finds nothing more to do.
    assert expire_unpaid_orders().startswith("cancelled 0 unpaid orders")


def test_an_expired_order_gives_back_its_slot_and_its_code_use(
    restaurants, shops, stripe_stand_in, django_capture_on_commit_callbacks
):
    ours = restaurants[0]
    Restaurant.objects.filter(pk=ours.pk).update(orders_per_slot=1)
    ours.refresh_from_db()
    with tenant_context(ours):
        code = Promotion.objects.create(
            code="ONCE", kind=Promotion.Kind.PERCENT, value=10, max_redemptions=1
        )
    abandoned = card_order(ours, shops["ours"], promotion_code="ONCE")
    with pytest.raises(SlotFull):
        card_order(ours, shops["ours"])
    age(ours, abandoned, 31)
    with django_capture_on_commit_callbacks(execute=True):
        expire_unpaid_orders()
    with tenant_context(ours):
        code.refresh_from_db()
    assert code.redemption_count == 0
    again = card_order(ours, shops["ours"], promotion_code="ONCE")  # the slot and the code
    assert order_of(ours, again).status == "pending_payment"
