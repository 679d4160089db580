"""Paid card orders and signed webhook deliveries for the refund, payout and dispute tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from orders.checkout_request import parse_checkout
from orders.models import Order, Status
from orders.placement import place_order
from payments.models import AccountRoute, Payment, StripeAccount
from payments.services import payment_confirm_return, payment_start
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import make_shop, open_all_week
from tests.support.stripe_server import StripeStandIn, pay, sign_event

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday, inside opening hours
CONNECT_SECRET = "whsec_connect_test"


def connect_cards(restaurant: Restaurant, *, payouts_enabled: bool = True) -> dict[str, Any]:
    """A restaurant that takes cards: opening hours, a menu, a routed connected account."""
    open_all_week(restaurant)
    ids = make_shop(restaurant)
    account_id = f"acct_{restaurant.slug}"
    with tenant_context(restaurant):
        StripeAccount.objects.create(
            account_id=account_id,
            details_submitted=True,
            charges_enabled=True,
            payouts_enabled=payouts_enabled,
        )
        AccountRoute.objects.create(account_id=account_id, restaurant=restaurant)
    return {**ids, "account": account_id}


_keys = iter(range(1, 100_000))


def paid_order(
    stand_in: StripeStandIn,
    restaurant: Restaurant,
    ids: dict[str, Any],
    *,
    email: str = "ada@example.com",
    fulfilment: str = "pickup",
) -> Payment:
    """A card order whose payment went through: 2 large burgers with cheese (2 x 16.50)
    and fries (4.50), 37.50 in all; placed."""
    body: dict[str, Any] = {
        "lines": [
            {
                "item_id": ids["burger"],
                "quantity": 2,
                "modifier_ids": [ids["large"], ids["cheese"]],
                "note": "No onions",
            },
            {"item_id": ids["fries"], "quantity": 1},
        ],
        "name": "Ada Lovelace",
        "email": email,
        "payment_method": "card",
        "fulfilment": fulfilment,
    }
    if fulfilment == "delivery":
        body["address"] = {"line1": "Runeberginkatu 5", "postal_code": "00100", "city": "Helsinki"}
        body["phone"] = "+358 40 7654321"
    with tenant_context(restaurant):
        order, _ = place_order(
            restaurant=restaurant,
            request=parse_checkout(body, restaurant.zone),
            idempotency_key=f"money-{next(_keys)}",
            now=NOW,
        )
        assert order.status == Status.PENDING_PAYMENT
        payment = payment_start(order=order)
    pay(stand_in, payment.payment_intent_id)
    with tenant_context(restaurant):
        paid = payment_confirm_return(order=Order.objects.get(pk=order.pk))
        assert paid is not None and paid.status == Payment.Status.SUCCEEDED
        return paid


def deliver(envelope: dict[str, Any]) -> Any:
    """POST an event to the Connect webhook endpoint, signed as Stripe signs it."""
    payload = json.dumps(envelope).encode()
    response = Client().post(
        reverse("stripe-webhook-connect"),
        data=payload,
        content_type="application/json",
        headers={"Stripe-Signature": sign_event(payload, CONNECT_SECRET)},
    )
    assert response.status_code == 200, response.content
    return response


def audit_events(restaurant: Restaurant, action: str) -> list[AuditEvent]:
    with tenant_context(restaurant):
        return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def fresh_payment(restaurant: Restaurant, payment: Payment) -> Payment:
    with tenant_context(restaurant):
        return Payment.objects.get(pk=payment.pk)


def order_of(restaurant: Restaurant, payment: Payment) -> Order:
    with tenant_context(restaurant):
        return Order.objects.get(pk=payment.order_id)
