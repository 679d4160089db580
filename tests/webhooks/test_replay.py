"""Sending one delivery again, and recovering every failed one since a time, through the API:
once each, with the same webhook-id, audited; refused while the endpoint is disabled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants.context import tenant_context
from tests.factories import api_client
from tests.support.events import ping
from tests.support.webhook_receiver import Reply
from tests.webhooks.conftest import (
    attempts,
    audited,
    deliveries,
    make_endpoint,
    publish,
    send_due,
)
from webhooks.models import Delivery

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_resend_sends_once_more_with_the_same_webhook_id(roster, receiver):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    endpoint = make_endpoint(owner, receiver.url).endpoint
    receiver.answer(Reply(500))
    publish(ours, ping(ours.pk))
    send_due()
    (delivery,) = deliveries(ours)
    assert delivery.status == "pending"  # a retry is scheduled
    client = api_client(owner)

    response = client.post(
        f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries/{delivery.pk}/resend"
    )
    assert response.status_code == 202, response.content
    assert send_due() == 1
    assert send_due() == 0  # once

    (delivery,) = deliveries(ours)
    assert delivery.status == "succeeded"
    assert [a.trigger for a in attempts(ours)] == ["automatic", "manual"]
    first, again = receiver.received
    assert again.headers["webhook-id"] == first.headers["webhook-id"] == delivery.message_id
    (event,) = audited(ours, "webhook_endpoint.resent")
    assert event.changes == {"delivery": delivery.pk, "message_id": delivery.message_id}
    # Another endpoint's path does not reach this delivery.
    other = make_endpoint(owner, receiver.url.replace("/hooks", "/other")).endpoint
    wrong = client.post(f"/api/v1/webhook-endpoints/{other.pk}/deliveries/{delivery.pk}/resend")
    assert wrong.status_code == 404


def test_recover_resends_the_failed_deliveries_since_a_time_and_no_earlier_one(roster, receiver):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    endpoint = make_endpoint(owner, receiver.url).endpoint
    receiver.default = Reply(410)
    publish(ours, ping(ours.pk, n=1), ping(ours.pk, n=2), ping(ours.pk, n=3))
    send_due()
    assert {d.status for d in deliveries(ours)} == {"failed"}
    old, *recent = deliveries(ours)
    since = timezone.now() - timedelta(hours=1)
    with tenant_context(ours):
        Delivery.objects.filter(pk=old.pk).update(created_at=since - timedelta(minutes=1))
    client = api_client(owner)
    url = f"/api/v1/webhook-endpoints/{endpoint.pk}"
    body = {"since": since.isoformat()}

    # Disabled by the 410: refused until enabled again.
    refused = client.post(f"{url}/recover", body, content_type="application/json")
    assert refused.status_code == 409, refused.content
    resend = client.post(f"{url}/deliveries/{old.pk}/resend")
    assert resend.status_code == 409, resend.content
    assert audited(ours, "webhook_endpoint.resent") == []
    enabled = client.patch(url, {"enabled": True}, content_type="application/json")
    assert enabled.status_code == 200, enabled.content
    receiver.default = Reply(200)
    received_before = len(receiver.received)

    response = client.post(f"{url}/recover", body, content_type="application/json")
    assert response.status_code == 202, response.content
    assert response.json() == {"deliveries": 2}
    assert send_due() == 2

    sent = {r.headers["webhook-id"] for r in receiver.received[received_before:]}
    assert sent == {d.message_id for d in recent}
    by_pk = {d.pk: d for d in deliveries(ours)}
    assert by_pk[old.pk].status == "failed"
    assert {by_pk[d.pk].status for d in recent} == {"succeeded"}
    manual = [a for a in attempts(ours) if a.trigger == "manual"]
    assert sorted(a.delivery_id for a in manual) == sorted(d.pk for d in recent)
    (event,) = audited(ours, "webhook_endpoint.resent")
    assert event.changes["deliveries"] == 2
