"""Every event of the catalogue is published by the flow that makes it happen, with a payload
its JSON Schema accepts, and diner contact data only where the schema marks it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.urls import reverse
from jsonschema import Draft202012Validator

from events.models import Event
from menus import services as menus
from menus.models import Item
from nordkestrel import events
from orders.checkout_request import parse_checkout
from orders.models import Order, Status
from orders.placement import place_order
from orders.services import order_cancel, order_transition
from promotions.models import Promotion
from staff.auth import Actor
from staff.roles import ALL_SCOPES, Role, Scope, scopes_for
from tenants.context import tenant_context
from tests.factories import api_client, make_shop, open_all_week
from tests.payments.money_support import NOW, connect_cards, paid_order
from tests.payments.test_webhooks import card_order, deliver, failed_event, succeeded_event

pytestmark = pytest.mark.django_db

CATALOGUE = {
    "order.placed",
    "order.status_changed",
    "order.cancelled",
    "order.refunded",
    "payment.succeeded",
    "payment.failed",
    "menu.published",
    "item.sold_out_changed",
    "customer.created",
    "promotion.redeemed",
}


def published(restaurant, event_type: str) -> list[dict[str, Any]]:
    """The payloads of ``event_type`` in the restaurant's log, oldest first, each checked
    against its schema."""
    entry = events.catalogue_entry(event_type)
    validator = Draft202012Validator(
        entry.schema, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    with tenant_context(restaurant):
        rows = list(Event.objects.filter(type=event_type).order_by("occurred_at", "id"))
    for row in rows:
        assert row.version == entry.version
        validator.validate(row.payload)
    return [row.payload for row in rows]


def checkout(restaurant, ids, *, email="ada@example.com", code="", key=None) -> Order:
    body = {
        "lines": [{"item_id": ids["fries"], "quantity": 2}],
        "name": "Ada Lovelace",
        "email": email,
        "phone": "+358 40 1234567",
        "promotion_code": code,
    }
    with tenant_context(restaurant):
        order, created = place_order(
            restaurant=restaurant,
            request=parse_checkout(body, restaurant.zone),
            idempotency_key=key or uuid.uuid4().hex,
            now=NOW,
        )
    assert created
    return order


@pytest.fixture
def shop(restaurants):
    ours = restaurants[0]
    open_all_week(ours)
    ids = make_shop(ours)
    with tenant_context(ours):
        Promotion.objects.create(code="SPRING5", kind=Promotion.Kind.FIXED, value=100)
    return ours, ids


def test_the_catalogue_lists_each_event_with_a_version_a_schema_and_scopes():
    registered = {entry.name: entry for entry in events.catalogue()}
    assert set(registered) >= CATALOGUE
    for name in CATALOGUE:
        entry = registered[name]
        assert entry.version == 1
        Draft202012Validator.check_schema(entry.schema)
        assert entry.scope in ALL_SCOPES
        assert entry.description
        # Contact data (names, emails, phones) only behind the customers scope.
        assert set(entry.restricted_fields().values()) <= {Scope.CUSTOMERS_READ}
    assert registered["order.placed"].restricted_fields() == {"contact": Scope.CUSTOMERS_READ}
    assert registered["customer.created"].restricted_fields() == {"contact": Scope.CUSTOMERS_READ}


def test_a_checkout_publishes_the_order_the_new_customer_and_the_codes_use(shop, restaurants):
    ours, ids = shop

    order = checkout(ours, ids, code="SPRING5")
    again = checkout(ours, ids)  # the same diner: no new customer

    placed = published(ours, "order.placed")
    assert [p["order"]["id"] for p in placed] == [order.pk, again.pk]
    first = placed[0]
    assert first["order"] | {"placed_at": None} == {
        "id": order.pk, "public_id": str(order.public_id), "number": order.number,
        "status": "placed", "fulfilment": "pickup", "payment_method": "in_person",
        "customer_id": order.customer_id, "currency": "EUR", "subtotal": order.subtotal,
        "discount": 100, "tax": order.tax, "delivery_fee": 0, "tip": 0, "total": order.total,
        "promotion_code": "SPRING5", "placed_at": None,
        "promised_at": order.promised_at.isoformat(), "scheduled_for": None,
    }  # fmt: skip
    assert first["order"]["placed_at"] == NOW.isoformat()
    assert first["contact"] == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+358 40 1234567",
    }
    (created,) = published(ours, "customer.created")
    assert created["customer"]["id"] == order.customer_id
    assert created["contact"]["email"] == "ada@example.com"
    (redeemed,) = published(ours, "promotion.redeemed")
    assert redeemed["promotion"]["code"] == "SPRING5"
    assert redeemed["order"] == {"id": order.pk, "public_id": str(order.public_id)}
    assert (redeemed["redemption"]["discount"], redeemed["redemption"]["currency"]) == (100, "EUR")
    assert redeemed["customer_id"] == order.customer_id
    assert published(restaurants[1], "order.placed") == []


def test_a_refused_checkout_publishes_nothing(shop):
    ours, ids = shop
    with pytest.raises(Exception, match="not valid"):
        checkout(ours, ids, email="grace@example.com", code="NOPE")
    assert published(ours, "order.placed") == published(ours, "customer.created") == []


def test_the_kitchens_steps_and_a_cancellation_are_published(shop):
    ours, ids = shop
    order = checkout(ours, ids)
    owner = Actor(member=ids["owner"])
    with tenant_context(ours):
        order_transition(actor=owner, order_id=order.pk, to_status=Status.ACCEPTED)
        order_transition(actor=owner, order_id=order.pk, to_status=Status.ACCEPTED)  # no move
        order_cancel(actor=owner, order_id=order.pk, reason="Out of fries")

    changes = published(ours, "order.status_changed")
    assert [(c["from_status"], c["to_status"]) for c in changes] == [
        ("placed", "accepted"),
        ("accepted", "cancelled"),
    ]
    assert changes[1]["order"]["status"] == "cancelled"
    (cancelled,) = published(ours, "order.cancelled")
    assert (cancelled["from_status"], cancelled["reason"]) == ("accepted", "Out of fries")
    assert cancelled["order"]["id"] == order.pk


def test_a_full_refund_through_stripe_publishes_order_refunded(
    roster, restaurants, stripe_stand_in
):
    ours = restaurants[0]
    payment = paid_order(stripe_stand_in, ours, connect_cards(ours))

    response = api_client(roster[("ours", "owner")]).post(
        reverse("api-order-refunds", kwargs={"pk": payment.order_id}),
        data=json.dumps({"amount": payment.amount, "reason": "Lost"}),
        content_type="application/json",
        headers={"Idempotency-Key": "refund-all"},
    )

    assert response.status_code == 201, response.content
    (refunded,) = published(ours, "order.refunded")
    assert (refunded["order"]["id"], refunded["order"]["status"]) == (payment.order_id, "refunded")
    assert refunded["from_status"] == "placed"
    assert refunded["order"]["total"] == payment.amount


def test_payment_webhooks_publish_failure_then_success_and_the_placed_order(
    restaurants, stripe_stand_in
):
    ours = restaurants[0]
    payment = card_order(ours, connect_cards(ours))
    assert published(ours, "order.placed") == [], "a card order waits for its payment"

    assert deliver(failed_event(stripe_stand_in, payment)).status_code == 200
    assert deliver(succeeded_event(stripe_stand_in, payment)).status_code == 200
    assert deliver(succeeded_event(stripe_stand_in, payment)).status_code == 200  # again

    (failed,) = published(ours, "payment.failed")
    assert failed["failure_message"] == "Your card was declined."
    assert (failed["payment"]["id"], failed["payment"]["order_id"]) == (
        payment.pk,
        payment.order_id,
    )
    (succeeded,) = published(ours, "payment.succeeded")
    assert succeeded["payment"] | {"succeeded_at": None} == {
        "id": payment.pk, "order_id": payment.order_id, "status": "succeeded",
        "amount": payment.amount, "currency": payment.currency,
        "payment_intent_id": payment.payment_intent_id, "succeeded_at": None,
    }  # fmt: skip
    (placed,) = published(ours, "order.placed")
    assert (placed["order"]["id"], placed["order"]["payment_method"]) == (payment.order_id, "card")
    changes = published(ours, "order.status_changed")
    assert [(c["from_status"], c["to_status"]) for c in changes] == [("pending_payment", "placed")]


def test_publishing_the_menu_and_toggling_sold_out_are_published(shop):
    ours, ids = shop
    owner = Actor(member=ids["owner"])
    with tenant_context(ours):
        fries = Item.objects.get(pk=ids["fries"])
        menus.set_sold_out(actor=owner, obj=fries, sold_out=True)
        menus.set_sold_out(actor=owner, obj=fries, sold_out=True)  # already: nothing new
        menus.set_sold_out(actor=owner, obj=fries, sold_out=False)
        menus.publish(actor=owner)

    toggles = published(ours, "item.sold_out_changed")
    assert [(t["kind"], t["id"], t["sold_out"]) for t in toggles] == [
        ("item", fries.pk, True),
        ("item", fries.pk, False),
    ]
    versions = published(ours, "menu.published")
    assert [v["version"]["number"] for v in versions] == [1, 2]  # make_shop published the first
    assert versions[-1]["published_by_id"] == ids["owner"].pk
    assert versions[-1]["version"]["rolled_back_from"] is None


def test_readers_without_the_customers_scope_see_no_contact_data(shop):
    ours, ids = shop
    checkout(ours, ids)
    with tenant_context(ours):
        placed = Event.objects.get(type="order.placed").as_event()
        created = Event.objects.get(type="customer.created").as_event()

    kitchen = scopes_for(Role.KITCHEN)
    seen = events.visible_payload(placed, kitchen)
    assert seen == {"order": placed.payload["order"]}
    assert events.visible_payload(created, kitchen) is None, "not the kitchen's to see at all"
    manager = scopes_for(Role.MANAGER)
    assert events.visible_payload(placed, manager) == placed.payload
    assert events.visible_payload(created, manager) == created.payload
