"""The keys' periodic jobs: last use recorded from the usage marks, expiry warnings once."""

import pytest
from django.core import mail
from django.core.management import call_command

from apikeys import jobs, usage
from apikeys.models import ApiKey
from audit.models import AuditEvent
from tenants.context import tenant_context
from tests.factories import api_client, key_client, make_api_key, make_staff


@pytest.mark.django_db
def test_a_use_is_listed_at_once_and_recorded_by_the_job(roster):
    usage.take_uses()  # marks of earlier tests
    owner = roster[("ours", "owner")]
    key_client(make_api_key(owner)).get("/api/v1/orders")
    [listed] = api_client(owner).get("/api/v1/api-keys").json()["results"]
    assert listed["last_used_at"] is not None
    assert listed["last_used_ip"] == "127.0.0.1"
    with tenant_context(owner.restaurant):
        assert ApiKey.objects.get().last_used_at is None  # nothing written on the request path
    assert jobs.record_usage() == 1
    with tenant_context(owner.restaurant):
        key = ApiKey.objects.get()
    assert key.last_used_at is not None and key.last_used_ip == "127.0.0.1"
    assert jobs.record_usage() == 0  # the marks were taken


@pytest.mark.django_db(transaction=True)
def test_owners_are_warned_once_seven_days_before_expiry(restaurants):
    ours, _ = restaurants
    owner = make_staff(ours, "owner", email="owner@ours.example.com")
    admin = make_staff(ours, "admin", email="admin@ours.example.com")
    make_api_key(admin, name="Soon", expires_in_days=6)
    make_api_key(admin, name="Later", expires_in_days=30)
    mail.outbox.clear()
    call_command("run_periodic", "api-key-expiry-warnings")
    (message,) = mail.outbox
    assert message.to == [owner.email]
    assert "Soon" in message.body and "Later" not in message.body
    call_command("run_periodic", "api-key-expiry-warnings")
    assert len(mail.outbox) == 1, "warned once per expiry"


@pytest.mark.django_db
def test_the_audit_actor_of_a_keys_action_is_the_key_and_its_creator(roster):
    from tests.security.objects import make_object

    owner = roster[("ours", "owner")]
    order = make_object("order", owner.restaurant)
    secret = make_api_key(owner, grants={"orders": "write"}, name="POS")
    response = key_client(secret).post(
        f"/api/v1/orders/{order.pk}/cancel", {"reason": "Out of stock"},
        content_type="application/json",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    with tenant_context(owner.restaurant):
        key = ApiKey.objects.get()
        event = AuditEvent.objects.get(action="order.cancelled")
    assert event.actor_type == "api_key"
    assert event.actor_id == key.pk
    assert event.actor_clerk_user_id == owner.clerk_user_id
    assert "POS" in event.actor_label and owner.label in event.actor_label
