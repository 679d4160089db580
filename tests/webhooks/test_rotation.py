"""After a rotation both secrets sign for 24 hours (either verifies), then only the new one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tenants.context import tenant_context
from tests.support.events import ping
from tests.webhooks.conftest import actor_of, audited, make_endpoint, publish, send_due
from webhooks import messages, services
from webhooks.models import Endpoint

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def test_the_previous_secret_signs_until_its_overlap_ends():
    expires = NOW + messages.ROTATION_OVERLAP
    assert messages.signing_keys("new", "old", expires, NOW) == ["new", "old"]
    assert messages.signing_keys("new", "old", expires, expires - timedelta(seconds=1)) == [
        "new",
        "old",
    ]
    assert messages.signing_keys("new", "old", expires, expires) == ["new"]
    assert messages.signing_keys("new", "", None, NOW) == ["new"]


@pytest.mark.usefixtures("transactional_db")
def test_a_rotated_endpoint_is_signed_with_both_secrets_for_a_day(roster, receiver):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    issued = make_endpoint(owner, receiver.url)
    with tenant_context(ours):
        rotated = services.endpoint_rotate(actor=actor_of(owner), endpoint=issued.endpoint)
    assert rotated.secret != issued.secret
    expires = rotated.endpoint.previous_secret_expires_at
    assert expires is not None
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=24))) < timedelta(minutes=1)
    assert len(audited(ours, "webhook_endpoint.secret_rotated")) == 1

    publish(ours, ping(ours.pk, n=1))
    assert send_due() == 1
    (during,) = receiver.received
    assert len(during.signatures) == 2
    for secret in (rotated.secret, issued.secret):
        assert Webhook(secret).verify(during.raw, during.headers)["data"]["n"] == 1

    # The overlap is over (its end moved to the past, as 24 hours would).
    with tenant_context(ours):
        Endpoint.objects.filter(pk=issued.endpoint.pk).update(
            previous_secret_expires_at=datetime.now(UTC) - timedelta(seconds=1)
        )
    publish(ours, ping(ours.pk, n=2))
    assert send_due() == 1
    after = receiver.received[1]
    assert len(after.signatures) == 1
    assert Webhook(rotated.secret).verify(after.raw, after.headers)["data"]["n"] == 2
    with pytest.raises(WebhookVerificationError):
        Webhook(issued.secret).verify(after.raw, after.headers)
