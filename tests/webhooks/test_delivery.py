"""What an endpoint receives: Standard Webhooks signatures and body, one webhook-id per event
and endpoint whatever the attempt, the test message, the scopes it was created with, and a
bus that adds nothing to the publishing transaction."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from standardwebhooks import Webhook, WebhookVerificationError

from events.models import Event
from nordkestrel import events
from tenants.context import tenant_context
from tests.factories import api_client, key_client, make_api_key
from tests.support.events import PINGED, ping
from tests.support.webhook_receiver import Reply
from tests.webhooks.conftest import (
    attempts,
    deliveries,
    make_endpoint,
    publish,
    send_due,
    wait_passes,
)
from webhooks.messages import TEST_EVENT_TYPE

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_each_request_carries_verifiable_standard_webhooks_headers_and_body(roster, receiver):
    owner = roster[("ours", "owner")]
    issued = make_endpoint(owner, receiver.url)
    event = ping(owner.restaurant.pk, n=3)
    publish(owner.restaurant, event)

    assert send_due() == 1

    (request,) = receiver.received
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= set(request.headers)
    assert request.headers["content-type"] == "application/json"
    assert Webhook(issued.secret).verify(request.raw, request.headers) == request.body
    assert request.body == {
        "type": "test.pinged",
        "timestamp": events.timestamp(event.occurred_at),
        "data": {"n": 3, "contact": {"email": "a@b.c"}},
    }
    assert request.headers["webhook-id"] == str(event.id)
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 300
    (signature,) = request.signatures
    assert signature.startswith("v1,")
    # Another secret does not verify it, nor does a body changed by one byte.
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(request.raw, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(issued.secret).verify(request.raw.replace(b"3", b"4"), request.headers)


def test_an_event_keeps_its_webhook_id_across_retries_and_a_resend(roster, receiver):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    issued = make_endpoint(owner, receiver.url)
    receiver.secrets.append(issued.secret)
    receiver.answer(Reply(500))
    event = ping(ours.pk)
    publish(ours, event)

    assert send_due() == 1
    assert wait_passes(ours) == 1
    assert send_due() == 1  # the retry succeeds (the receiver's default)
    (delivery,) = deliveries(ours)
    assert delivery.status == "succeeded"
    response = api_client(owner).post(
        f"/api/v1/webhook-endpoints/{issued.endpoint.pk}/deliveries/{delivery.pk}/resend"
    )
    assert response.status_code == 202, response.content
    assert send_due() == 1

    assert len(receiver.received) == 3
    assert {r.headers["webhook-id"] for r in receiver.received} == {str(event.id)}
    assert all(r.verified is not None for r in receiver.received)
    assert [a.trigger for a in attempts(ours)] == ["automatic", "automatic", "manual"]


def test_each_endpoint_gets_the_event_under_the_same_webhook_id(roster, receiver):
    owner = roster[("ours", "owner")]
    make_endpoint(owner, receiver.url)
    make_endpoint(owner, receiver.url.replace("/hooks", "/other"))
    event = ping(owner.restaurant.pk)
    publish(owner.restaurant, event)

    assert send_due() == 2

    assert sorted(r.path for r in receiver.received) == ["/hooks", "/other"]
    assert {r.headers["webhook-id"] for r in receiver.received} == {str(event.id)}


def test_a_test_message_arrives_signed_and_is_logged(roster, receiver):
    owner = roster[("ours", "owner")]
    issued = make_endpoint(owner, receiver.url)
    receiver.secrets.append(issued.secret)

    response = api_client(owner).post(f"/api/v1/webhook-endpoints/{issued.endpoint.pk}/test")
    assert response.status_code == 202, response.content
    assert send_due() == 1

    (request,) = receiver.received
    assert request.verified is not None
    assert request.verified["type"] == TEST_EVENT_TYPE
    assert request.verified["data"]["restaurant_id"] == owner.restaurant.pk
    (delivery,) = deliveries(owner.restaurant)
    assert delivery.pk == response.json()["id"]
    assert delivery.status == "succeeded"
    assert request.headers["webhook-id"] == delivery.message_id
    (attempt,) = attempts(owner.restaurant, delivery=delivery)
    assert attempt.status_code == 200
    assert attempt.response_body == "ok"


def test_a_test_message_reaches_a_disabled_endpoint(roster, receiver):
    """The test message is how an integrator checks a receiver before enabling it."""
    owner = roster[("ours", "owner")]
    issued = make_endpoint(owner, receiver.url, enabled=False)

    response = api_client(owner).post(f"/api/v1/webhook-endpoints/{issued.endpoint.pk}/test")
    assert response.status_code == 202, response.content
    publish(owner.restaurant, ping(owner.restaurant.pk))  # owed to no one: it is disabled
    assert send_due() == 1

    (request,) = receiver.received
    assert request.body["type"] == TEST_EVENT_TYPE
    (delivery,) = deliveries(owner.restaurant)
    assert delivery.status == "succeeded"


def test_a_key_without_customers_read_receives_events_without_the_contact_field(roster, receiver):
    owner = roster[("ours", "owner")]
    key = make_api_key(owner, {"orders": "read", "webhooks": "write"})
    response = key_client(key).post(
        "/api/v1/webhook-endpoints",
        {"url": receiver.url, "event_types": [PINGED.name]},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    owners = make_endpoint(owner, receiver.url.replace("/hooks", "/owner"))
    publish(owner.restaurant, ping(owner.restaurant.pk, n=5))

    assert send_due() == 2

    by_path = {r.path: r.body for r in receiver.received}
    assert by_path["/hooks"]["data"] == {"n": 5}
    assert by_path["/owner"]["data"] == {"n": 5, "contact": {"email": "a@b.c"}}
    assert owners.endpoint.scopes != response.json().get("scopes", [])


def test_a_key_that_cannot_read_orders_neither_subscribes_to_nor_receives_them(roster, receiver):
    owner = roster[("ours", "owner")]
    client = key_client(make_api_key(owner, {"menus": "read", "webhooks": "write"}))

    refused = client.post(
        "/api/v1/webhook-endpoints",
        {"url": receiver.url, "event_types": [PINGED.name]},
        content_type="application/json",
    )
    assert refused.status_code == 400, refused.content
    assert refused.json()["errors"][0]["code"] == "scope_not_held"
    # With no event types: every type it may read, which excludes the orders' events.
    created = client.post(
        "/api/v1/webhook-endpoints", {"url": receiver.url}, content_type="application/json"
    )
    assert created.status_code == 201, created.content
    publish(owner.restaurant, ping(owner.restaurant.pk))

    assert send_due() == 0
    assert receiver.received == []
    assert deliveries(owner.restaurant) == []


def _publish_counting(restaurant) -> list[str]:
    with tenant_context(restaurant), CaptureQueriesContext(connection) as queries:
        events.publish(ping(restaurant.pk))
    # The tenant context's own statements (setting the restaurant) are the same either way.
    return [query["sql"] for query in queries.captured_queries]


def test_publishing_adds_no_statement_for_the_endpoints(roster, receiver):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    without = _publish_counting(ours)
    for path in ("/a", "/b", "/c"):
        make_endpoint(owner, receiver.url.replace("/hooks", path))

    with_three = _publish_counting(ours)

    assert len(with_three) == len(without)
    # The deliveries are owed after the commit, by the bus's subscriber.
    assert len(deliveries(ours)) == 3
    with tenant_context(ours):
        assert Event.objects.filter(type=PINGED.name).count() == 2
