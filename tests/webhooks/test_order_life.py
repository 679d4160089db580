"""An integrator's endpoint receives an order's whole life, signed, through the real queue: the
checkout's events, each move in the kitchen, and the cancellation, each once."""

from datetime import UTC, datetime

from orders.checkout_request import parse_checkout
from orders.placement import place_order
from orders.services import order_cancel, order_transition
from staff.auth import Actor
from tenants.context import tenant_context
from tests.factories import make_shop, open_all_week
from tests.webhooks.conftest import deliveries, make_endpoint, send_due

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)  # a Monday, inside opening hours


def test_an_orders_life_arrives_signed_and_once(roster, receiver, db_tasks):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    open_all_week(ours)
    ids = make_shop(ours)
    issued = make_endpoint(owner, receiver.url)
    receiver.secrets.append(issued.secret)
    body = {"lines": [{"item_id": ids["fries"], "quantity": 1}], "name": "Ada",
            "email": "ada@example.com"}  # fmt: skip
    order, _ = place_order(
        restaurant=ours, request=parse_checkout(body, ours.zone), idempotency_key="life", now=NOW
    )
    actor = Actor(member=owner)
    with tenant_context(ours):
        for status in ("accepted", "preparing"):
            order_transition(actor=actor, order_id=order.pk, to_status=status)
        order_cancel(actor=actor, order_id=order.pk, reason="out of fries")

    db_tasks.run()  # the fan-out, in the task worker
    send_due()

    verified = [request.verified for request in receiver.received]
    assert None not in verified, "every message verifies with the endpoint's secret"
    # The menu was published before the endpoint existed: that event is not sent to it.
    types = sorted(message["type"] for message in verified)
    assert types == sorted(
        [
            "customer.created",
            "order.placed",
            "order.status_changed",
            "order.status_changed",
            "order.status_changed",
            "order.cancelled",
        ]
    )
    moves = sorted(
        (m["data"]["from_status"], m["data"]["to_status"])
        for m in verified
        if m["type"] == "order.status_changed"
    )
    assert moves == [("accepted", "preparing"), ("placed", "accepted"), ("preparing", "cancelled")]
    placed = next(m for m in verified if m["type"] == "order.placed")
    assert placed["data"]["order"]["id"] == order.pk
    assert placed["data"]["contact"]["email"] == "ada@example.com"
    ids_sent = [request.headers["webhook-id"] for request in receiver.received]
    assert len(set(ids_sent)) == len(ids_sent) == 6
    assert {d.status for d in deliveries(ours)} == {"succeeded"}
    # Sending again finds nothing owed.
    assert send_due() == 0
