"""An endpoint created through the API receives a published event, signed."""

import pytest

from nordkestrel import events
from tenants.context import tenant_context
from tests.factories import api_client
from tests.support.events import ping
from tests.webhooks.conftest import send_due
from webhooks.models import Delivery

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_a_published_event_arrives_signed(roster, receiver):
    owner = roster[("ours", "owner")]
    response = api_client(owner).post(
        "/api/v1/webhook-endpoints",
        {"url": receiver.url, "description": "POS"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    receiver.secrets.append(response.json()["secret"])
    with tenant_context(owner.restaurant):
        events.publish(ping(owner.restaurant.pk, n=7))
    assert send_due() == 1
    (request,) = receiver.received
    assert request.verified is not None
    assert request.verified["type"] == "test.pinged"
    assert request.verified["data"]["n"] == 7
    with tenant_context(owner.restaurant):
        (delivery,) = Delivery.objects.all()
    assert delivery.status == "succeeded"
    assert request.headers["webhook-id"] == delivery.message_id
