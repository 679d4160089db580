"""The webhook endpoints API (``/api/v1/webhook-endpoints``): the secret shown once, the limits,
the event types an actor may ask for, the URL rules, the audit trail, rotation, the delivery
log and what it refuses."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from staff.auth import Actor
from staff.roles import Scope
from tenants.context import tenant_context
from tests.factories import api_client, key_client, make_api_key, run_concurrently
from tests.security.objects import make_object
from webhooks import messages, services
from webhooks.models import Attempt, Delivery, Endpoint

BASE = "/api/v1/webhook-endpoints"
URL = "https://hooks.example.com/nordkestrel"
LISTED = {
    "id", "url", "description", "event_types", "enabled", "disabled_reason", "disabled_at",
    "failing_since", "previous_secret_expires_at", "created_at", "updated_at",
}  # fmt: skip


@pytest.fixture(autouse=True)
def _generous_rates(settings):
    """Tests that count the limits set them; the rest never meet one."""
    settings.WEBHOOK_CREATE_RATE = "1000/h"
    settings.WEBHOOK_TEST_RATE = "1000/h"


def post(client, path, body=None):
    return client.post(path, json.dumps(body or {}), content_type="application/json")


def patch(client, path, body):
    return client.patch(path, json.dumps(body), content_type="application/json")


def create(client, **fields):
    return post(client, BASE, {"url": URL, **fields})


def owner_client(roster):
    return api_client(roster[("ours", "owner")])


def endpoints(restaurant):
    with tenant_context(restaurant):
        return list(Endpoint.objects.order_by("id"))


def audit_events(restaurant, prefix="webhook_endpoint."):
    with tenant_context(restaurant):
        return list(AuditEvent.objects.filter(action__startswith=prefix).order_by("sequence"))


def refusal(response, status, code, attr=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    if attr is not None:
        assert body["attr"] == attr, body
    return body


# --- Create: the secret, once -----------------------------------------------------------------


@pytest.mark.django_db
class TestCreate:
    def test_the_secret_is_shown_once_and_never_again(self, roster):
        owner = roster[("ours", "owner")]
        client = api_client(owner)
        created = create(client, description="POS", event_types=["order.placed"])
        assert created.status_code == 201, created.content
        assert "no-store" in created["Cache-Control"]
        body = created.json()
        assert set(body) == LISTED | {"secret"}
        secret = body["secret"]
        assert secret.startswith(messages.SECRET_PREFIX)
        assert len(secret) > len(messages.SECRET_PREFIX) + 40
        [stored] = endpoints(owner.restaurant)
        assert stored.secret == secret, "the secret shown is the one that signs"
        assert (body["id"], body["url"], body["event_types"]) == (stored.pk, URL, ["order.placed"])
        listed = client.get(BASE)
        detail = client.get(f"{BASE}/{stored.pk}")
        for response in (listed, detail):
            assert response.status_code == 200
            assert secret not in response.content.decode()
            assert secret[len(messages.SECRET_PREFIX) :] not in response.content.decode()
        assert set(detail.json()) == LISTED
        assert set(listed.json()["results"][0]) == LISTED
        [event] = audit_events(owner.restaurant)
        assert event.action == "webhook_endpoint.created"
        assert event.target_id == str(stored.pk)
        assert (event.actor_type, event.actor_id) == ("staff", owner.pk)
        assert event.changes["url"] == URL
        recorded = json.dumps(event.changes) + event.target_label
        assert secret not in recorded
        assert secret[len(messages.SECRET_PREFIX) :] not in recorded

    def test_an_absent_event_list_means_every_type_the_creator_may_read(self, roster):
        owner = roster[("ours", "owner")]
        created = post(owner_client(roster), BASE, {"url": URL})
        assert created.status_code == 201, created.content
        assert created.json()["event_types"] == []
        assert created.json()["enabled"] is True
        [stored] = endpoints(owner.restaurant)
        assert Scope.ORDERS_READ.value in stored.scopes
        assert stored.created_by_id == owner.pk

    def test_duplicate_event_types_are_kept_once(self, roster):
        created = create(
            owner_client(roster), event_types=["order.placed", "menu.published", "order.placed"]
        )
        assert created.status_code == 201, created.content
        assert created.json()["event_types"] == ["order.placed", "menu.published"]

    def test_an_endpoint_created_disabled_is_disabled_by_hand(self, roster):
        created = create(owner_client(roster), enabled=False)
        assert created.status_code == 201, created.content
        assert created.json()["enabled"] is False
        assert created.json()["disabled_reason"] == Endpoint.Disabled.MANUALLY

    @pytest.mark.parametrize("role", ["manager", "cashier", "kitchen"])
    def test_only_owners_and_admins_reach_it(self, roster, role):
        member = roster[("ours", role)]
        existing = make_object("webhook_endpoint", member.restaurant)
        client = api_client(member)
        for response in (
            client.get(BASE),
            create(client),
            client.get(f"{BASE}/{existing.pk}"),
            client.get(f"{BASE}/{existing.pk}/deliveries"),
            post(client, f"{BASE}/{existing.pk}/rotate-secret"),
        ):
            refusal(response, 403, "permission_denied")
        assert len(endpoints(member.restaurant)) == 1
        assert audit_events(member.restaurant) == []

    def test_the_admin_creates_one(self, roster):
        assert create(api_client(roster[("ours", "admin")])).status_code == 201


# --- The limit of 10 --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_eleventh_endpoint_is_refused(roster):
    owner = roster[("ours", "owner")]
    for _ in range(services.MAX_ENDPOINTS - 1):
        make_object("webhook_endpoint", owner.restaurant)
    client = api_client(owner)
    assert create(client).status_code == 201
    body = refusal(create(client), 409, "too_many_endpoints")
    assert str(services.MAX_ENDPOINTS) in body["detail"]
    assert len(endpoints(owner.restaurant)) == services.MAX_ENDPOINTS
    # Another restaurant counts its own.
    assert create(api_client(roster[("theirs", "owner")])).status_code == 201
    # One deleted, one more fits.
    assert client.delete(f"{BASE}/{endpoints(owner.restaurant)[0].pk}").status_code == 204
    assert create(client).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_never_exceed_the_limit(roster):
    owner = roster[("ours", "owner")]
    for _ in range(services.MAX_ENDPOINTS - 2):
        make_object("webhook_endpoint", owner.restaurant)

    def create_one():
        with tenant_context(owner.restaurant):
            return services.endpoint_create(actor=Actor(member=owner), url=URL)

    results = run_concurrently(*[create_one] * 4)
    created = [r for r in results if isinstance(r, services.IssuedEndpoint)]
    refused = [r for r in results if not isinstance(r, services.IssuedEndpoint)]
    assert len(created) == 2, results
    assert [getattr(r, "code", r) for r in refused] == ["too_many_endpoints"] * 2, results
    assert len(endpoints(owner.restaurant)) == services.MAX_ENDPOINTS
    assert len(audit_events(owner.restaurant)) == 2, "each endpoint made is audited once"


# --- Rate limits ------------------------------------------------------------------------------


@pytest.mark.django_db
class TestRateLimits:
    def test_creates_are_limited_per_restaurant(self, roster, settings, frozen_ratelimit_clock):
        settings.WEBHOOK_CREATE_RATE = "2/h"
        owner, admin = roster[("ours", "owner")], roster[("ours", "admin")]
        assert create(api_client(owner)).status_code == 201
        assert create(api_client(admin)).status_code == 201
        refused = create(api_client(owner))
        refusal(refused, 429, "rate_limited")
        assert int(refused["Retry-After"]) > 0
        assert len(endpoints(owner.restaurant)) == 2
        # A bad request is refused before it counts; another restaurant has its own budget.
        bad = post(api_client(owner), BASE, {"url": ["https://a.example/"]})
        assert bad.status_code == 400, bad.content
        assert create(api_client(roster[("theirs", "owner")])).status_code == 201

    def test_test_messages_are_limited_per_restaurant(
        self, roster, settings, frozen_ratelimit_clock
    ):
        settings.WEBHOOK_TEST_RATE = "2/h"
        owner = roster[("ours", "owner")]
        first = make_object("webhook_endpoint", owner.restaurant)
        second = make_object("webhook_endpoint", owner.restaurant)
        client = api_client(owner)
        assert post(client, f"{BASE}/{first.pk}/test").status_code == 202
        assert post(client, f"{BASE}/{second.pk}/test").status_code == 202
        refused = post(client, f"{BASE}/{first.pk}/test")
        refusal(refused, 429, "rate_limited")
        assert int(refused["Retry-After"]) > 0
        with tenant_context(owner.restaurant):
            assert Delivery.objects.count() == 2


# --- Event types ------------------------------------------------------------------------------


@pytest.mark.django_db
class TestEventTypes:
    def test_an_unknown_event_type_is_named_by_its_position(self, roster):
        client = owner_client(roster)
        refusal(create(client, event_types=["order.eaten"]), 400, "unknown_event_type",
                "event_types.0")  # fmt: skip
        refusal(
            create(client, event_types=["order.placed", "webhook.test"]),
            400, "unknown_event_type", "event_types.1",
        )  # fmt: skip
        assert endpoints(roster[("ours", "owner")].restaurant) == []

    def test_a_key_cannot_ask_for_events_beyond_its_grants(self, roster):
        owner = roster[("ours", "owner")]
        client = key_client(make_api_key(owner, grants={"webhooks": "write", "menus": "read"}))
        body = refusal(
            create(client, event_types=["menu.published", "order.placed"]),
            400, "scope_not_held", "event_types.1",
        )  # fmt: skip
        assert Scope.ORDERS_READ.value in body["detail"]
        assert endpoints(owner.restaurant) == []
        created = create(client, event_types=["menu.published"])
        assert created.status_code == 201, created.content
        [stored] = endpoints(owner.restaurant)
        # It receives with the key's scopes, never its creator's.
        assert Scope.MENUS_READ.value in stored.scopes
        assert Scope.ORDERS_READ.value not in stored.scopes
        assert Scope.CUSTOMERS_READ.value not in stored.scopes
        assert stored.created_by_key_id is not None
        refusal(
            patch(client, f"{BASE}/{stored.pk}", {"event_types": ["order.placed"]}),
            400, "scope_not_held", "event_types.0",
        )  # fmt: skip

    def test_a_key_cannot_take_over_an_endpoint_staff_set_up(self, roster):
        owner = roster[("ours", "owner")]
        endpoint = make_object("webhook_endpoint", owner.restaurant)
        assert Scope.CUSTOMERS_READ.value in endpoint.scopes
        client = key_client(make_api_key(owner, grants={"webhooks": "write", "menus": "read"}))
        changed = patch(client, f"{BASE}/{endpoint.pk}", {"url": "https://elsewhere.example.com/"})
        assert changed.status_code == 403, changed.content
        assert changed.json()["code"] == "not_endpoint_creator"
        [stored] = endpoints(owner.restaurant)
        assert (stored.url, stored.scopes) == (endpoint.url, endpoint.scopes)

    def test_a_key_that_changes_its_endpoint_sets_it_to_its_own_scopes(self, roster):
        owner = roster[("ours", "owner")]
        client = key_client(make_api_key(owner, grants={"webhooks": "write", "menus": "read"}))
        endpoint = create(client).json()["id"]
        with tenant_context(owner.restaurant):
            # As if set by a wider actor (a role that changed since): the next change by the
            # key puts the key's own scopes back.
            Endpoint.objects.filter(pk=endpoint).update(scopes=["customers:read", "orders:read"])
        changed = patch(client, f"{BASE}/{endpoint}", {"url": "https://elsewhere.example.com/"})
        assert changed.status_code == 200, changed.content
        [stored] = endpoints(owner.restaurant)
        assert Scope.CUSTOMERS_READ.value not in stored.scopes
        assert Scope.ORDERS_READ.value not in stored.scopes
        assert Scope.MENUS_READ.value in stored.scopes


# --- URL rules --------------------------------------------------------------------------------


@pytest.mark.django_db
class TestUrls:
    @pytest.mark.parametrize(
        ("url", "code"),
        [
            ("http://hooks.example.com/", "invalid_webhook_url"),
            ("ftp://hooks.example.com/", "invalid_webhook_url"),
            ("https://user:secret@hooks.example.com/", "invalid_webhook_url"),
            ("https://token@hooks.example.com/", "invalid_webhook_url"),
            ("https://hooks.example.com/#part", "invalid_webhook_url"),
            ("https:///no-host", "invalid_webhook_url"),
            ("https://[::1/", "invalid_webhook_url"),
            ("https://hooks.example.com:99999/", "invalid_webhook_url"),
            ("https://hooks.example.com/a b", "invalid_webhook_url"),
            ("not a url", "invalid_webhook_url"),
            ("https://127.0.0.1/", "webhook_url_not_public"),
            ("https://10.1.2.3/hook", "webhook_url_not_public"),
            ("https://192.168.0.10:8443/", "webhook_url_not_public"),
            ("https://169.254.169.254/latest/meta-data", "webhook_url_not_public"),
            ("https://[::1]/", "webhook_url_not_public"),
            ("https://[::ffff:127.0.0.1]/", "webhook_url_not_public"),
            ("https://0.0.0.0/", "webhook_url_not_public"),
            ("https://100.64.0.1/", "webhook_url_not_public"),
        ],
    )
    def test_refused(self, roster, settings, url, code):
        settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
        refusal(create(owner_client(roster), url=url), 400, code, "url")
        assert endpoints(roster[("ours", "owner")].restaurant) == []

    def test_a_name_that_resolves_to_a_private_address_is_refused(self, roster, settings, dns):
        settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
        dns["inside.example.com"] = ["93.184.215.14", "10.0.0.7"]
        dns["outside.example.com"] = ["93.184.215.14"]
        client = owner_client(roster)
        body = refusal(
            create(client, url="https://inside.example.com/"), 400, "webhook_url_not_public", "url"
        )
        assert "10.0.0.7" in body["detail"]
        assert create(client, url="https://outside.example.com/").status_code == 201
        # A name not (yet) in DNS may be saved: every attempt checks it again.
        assert create(client, url="https://not-yet.example.com/").status_code == 201

    def test_a_change_of_url_is_checked_too(self, roster, settings):
        settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
        owner = roster[("ours", "owner")]
        endpoint = make_object("webhook_endpoint", owner.restaurant)
        client = api_client(owner)
        for url in ("https://127.0.0.1/", "http://hooks.example.com/", "https://a:b@x.example/"):
            refused = patch(client, f"{BASE}/{endpoint.pk}", {"url": url})
            assert refused.status_code == 400, (url, refused.content)
            assert refused.json()["attr"] == "url"
        assert endpoints(owner.restaurant)[0].url == endpoint.url
        assert audit_events(owner.restaurant) == []

    def test_loopback_http_is_allowed_for_private_targets(self, roster, private_targets):
        created = create(owner_client(roster), url="http://127.0.0.1:9/hook")
        assert created.status_code == 201, created.content


# --- Read, change, delete, and their audit trail ----------------------------------------------


@pytest.mark.django_db
class TestLifecycle:
    def test_list_and_detail(self, roster):
        owner = roster[("ours", "owner")]
        first = make_object("webhook_endpoint", owner.restaurant)
        second = make_object("webhook_endpoint", owner.restaurant)
        make_object("webhook_endpoint", roster[("theirs", "owner")].restaurant)
        client = api_client(owner)
        listed = client.get(BASE)
        assert listed.status_code == 200
        assert [row["id"] for row in listed.json()["results"]] == [second.pk, first.pk]
        assert "theirs" not in listed.content.decode()
        detail = client.get(f"{BASE}/{first.pk}")
        assert detail.json()["url"] == first.url
        assert first.secret not in listed.content.decode() + detail.content.decode()

    def test_patch_changes_what_it_is_given_and_audits_the_change(self, roster):
        owner = roster[("ours", "owner")]
        endpoint = make_object("webhook_endpoint", owner.restaurant)
        client = api_client(owner)
        changed = patch(
            client, f"{BASE}/{endpoint.pk}",
            {"description": "Kitchen screen", "event_types": ["order.placed"]},
        )  # fmt: skip
        assert changed.status_code == 200, changed.content
        assert changed.json()["description"] == "Kitchen screen"
        assert changed.json()["event_types"] == ["order.placed"]
        assert changed.json()["url"] == endpoint.url
        assert "secret" not in changed.json()
        [event] = audit_events(owner.restaurant)
        assert event.action == "webhook_endpoint.updated"
        assert event.changes["description"]["to"] == "Kitchen screen"
        assert event.changes["event_types"] == {"from": [], "to": ["order.placed"]}
        assert "url" not in event.changes
        assert endpoint.secret not in json.dumps(event.changes)
        # Nothing changed: nothing audited.
        assert patch(client, f"{BASE}/{endpoint.pk}", {}).status_code == 200
        assert len(audit_events(owner.restaurant)) == 1

    def test_mass_assignment_is_refused(self, roster):
        owner = roster[("ours", "owner")]
        endpoint = make_object("webhook_endpoint", owner.restaurant)
        client = api_client(owner)
        for field, value in [
            ("secret", "whsec_mine"), ("scopes", ["customers:read"]), ("restaurant", 2),
            ("disabled_reason", "gone"), ("id", 1), ("created_by", 1), ("failing_since", None),
        ]:  # fmt: skip
            refusal(patch(client, f"{BASE}/{endpoint.pk}", {field: value}), 400, "read_only",
                    field)  # fmt: skip
            refusal(create(client, **{field: value}), 400, "read_only", field)
        assert endpoints(owner.restaurant)[0].secret == endpoint.secret
        assert len(endpoints(owner.restaurant)) == 1

    def test_disabling_by_hand_fails_what_was_owed_and_is_audited(self, roster):
        owner = roster[("ours", "owner")]
        delivery = make_object("webhook_delivery", owner.restaurant)
        with tenant_context(owner.restaurant):
            Delivery.objects.filter(pk=delivery.pk).update(
                status=Delivery.Status.PENDING, next_attempt_at=timezone.now()
            )
        client = api_client(owner)
        path = f"{BASE}/{delivery.endpoint_id}"
        disabled = patch(client, path, {"enabled": False})
        assert disabled.status_code == 200, disabled.content
        assert disabled.json()["enabled"] is False
        assert disabled.json()["disabled_reason"] == Endpoint.Disabled.MANUALLY
        assert disabled.json()["disabled_at"] is not None
        with tenant_context(owner.restaurant):
            owed = Delivery.objects.get(pk=delivery.pk)
        assert (owed.status, owed.next_attempt_at) == (Delivery.Status.FAILED, None)
        assert [e.action for e in audit_events(owner.restaurant)] == ["webhook_endpoint.disabled"]
        [event] = audit_events(owner.restaurant)
        assert event.changes == {"reason": "manual"}
        assert (event.actor_type, event.actor_id) == ("staff", owner.pk)
        # Disabled already: nothing more happens.
        assert patch(client, path, {"enabled": False}).status_code == 200
        assert len(audit_events(owner.restaurant)) == 1
        # Enabled again.
        enabled = patch(client, path, {"enabled": True})
        assert enabled.json()["enabled"] is True
        assert enabled.json()["disabled_reason"] == ""
        assert audit_events(owner.restaurant)[-1].action == "webhook_endpoint.updated"
        assert audit_events(owner.restaurant)[-1].changes["enabled"] == {"from": False, "to": True}

    def test_delete_removes_the_endpoint_and_its_log_and_is_audited(self, roster):
        owner = roster[("ours", "owner")]
        delivery = make_object("webhook_delivery", owner.restaurant)
        other = make_object("webhook_delivery", owner.restaurant)
        client = api_client(owner)
        path = f"{BASE}/{delivery.endpoint_id}"
        deleted = client.delete(path)
        assert deleted.status_code == 204
        assert deleted.content == b""
        assert client.get(path).status_code == 404
        assert client.delete(path).status_code == 404
        with tenant_context(owner.restaurant):
            assert list(Delivery.objects.values_list("pk", flat=True)) == [other.pk]
            assert set(Attempt.objects.values_list("delivery_id", flat=True)) == {other.pk}
        [event] = audit_events(owner.restaurant)
        assert event.action == "webhook_endpoint.deleted"
        assert event.target_id == str(delivery.endpoint_id)

    def test_another_restaurants_endpoint_is_404_and_untouched(self, roster):
        theirs = make_object("webhook_endpoint", roster[("theirs", "owner")].restaurant)
        client = owner_client(roster)
        missing = client.get(f"{BASE}/999999999").json()
        for response in (
            client.get(f"{BASE}/{theirs.pk}"),
            patch(client, f"{BASE}/{theirs.pk}", {"enabled": False}),
            client.delete(f"{BASE}/{theirs.pk}"),
            post(client, f"{BASE}/{theirs.pk}/rotate-secret"),
            post(client, f"{BASE}/{theirs.pk}/test"),
            post(client, f"{BASE}/{theirs.pk}/recover", {"since": "2026-01-01T00:00:00Z"}),
            client.get(f"{BASE}/{theirs.pk}/deliveries"),
        ):
            assert response.status_code == 404, response.content
            assert response.json() == missing
        [after] = endpoints(roster[("theirs", "owner")].restaurant)
        assert (after.enabled, after.secret) == (True, theirs.secret)


# --- Rotation ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rotation_returns_a_new_secret_and_keeps_the_old_one_a_day(roster):
    owner = roster[("ours", "owner")]
    endpoint = make_object("webhook_endpoint", owner.restaurant)
    before = timezone.now()
    rotated = post(api_client(owner), f"{BASE}/{endpoint.pk}/rotate-secret")
    after = timezone.now()
    assert rotated.status_code == 200, rotated.content
    assert "no-store" in rotated["Cache-Control"]
    body = rotated.json()
    assert body["secret"].startswith(messages.SECRET_PREFIX)
    assert body["secret"] != endpoint.secret
    [stored] = endpoints(owner.restaurant)
    assert (stored.secret, stored.previous_secret) == (body["secret"], endpoint.secret)
    expires = stored.previous_secret_expires_at
    assert before + timedelta(hours=24) <= expires <= after + timedelta(hours=24)
    assert body["previous_secret_expires_at"] is not None
    [event] = audit_events(owner.restaurant)
    assert event.action == "webhook_endpoint.secret_rotated"
    recorded = json.dumps(event.changes)
    assert body["secret"] not in recorded and endpoint.secret not in recorded
    listed = api_client(owner).get(BASE).content.decode()
    assert body["secret"] not in listed and endpoint.secret not in listed


# --- The delivery log -------------------------------------------------------------------------


@pytest.mark.django_db
class TestDeliveries:
    def test_the_log_lists_deliveries_with_their_attempts_filtered_by_status(self, roster):
        owner = roster[("ours", "owner")]
        failed = make_object("webhook_delivery", owner.restaurant)
        with tenant_context(owner.restaurant):
            succeeded = Delivery.objects.create(
                endpoint_id=failed.endpoint_id, event_type=messages.TEST_EVENT_TYPE,
                message_id="msg_ok", status=Delivery.Status.SUCCEEDED,
            )  # fmt: skip
        client = api_client(owner)
        path = f"{BASE}/{failed.endpoint_id}/deliveries"
        everything = client.get(path)
        assert everything.status_code == 200
        assert [row["id"] for row in everything.json()["results"]] == [succeeded.pk, failed.pk]
        only_failed = client.get(path, {"status": "failed"}).json()["results"]
        assert [row["id"] for row in only_failed] == [failed.pk]
        [attempt] = only_failed[0]["attempts_log"]
        assert attempt["status_code"] == 500
        assert attempt["trigger"] == "automatic"
        assert [r["id"] for r in client.get(path, {"status": "succeeded"}).json()["results"]] == [
            succeeded.pk
        ]
        for wrong in ("eaten", "", "FAILED"):
            refusal(client.get(path, {"status": wrong}), 400, "invalid", "status")
        detail = client.get(f"{path}/{failed.pk}")
        assert detail.status_code == 200
        assert detail.json()["message_id"] == failed.message_id
        assert len(detail.json()["attempts_log"]) == 1

    def test_another_restaurants_delivery_is_404_even_under_our_endpoint(self, roster):
        owner = roster[("ours", "owner")]
        ours = make_object("webhook_endpoint", owner.restaurant)
        theirs = make_object("webhook_delivery", roster[("theirs", "owner")].restaurant)
        client = api_client(owner)
        missing = client.get(f"{BASE}/{ours.pk}/deliveries/999999999").json()
        for path in (
            f"{BASE}/{ours.pk}/deliveries/{theirs.pk}",
            f"{BASE}/{theirs.endpoint_id}/deliveries/{theirs.pk}",
        ):
            read = client.get(path)
            assert read.status_code == 404
            assert read.json() == missing
            resent = post(client, f"{path}/resend")
            assert resent.status_code == 404
            assert theirs.message_id not in read.content.decode() + resent.content.decode()
        listed = client.get(f"{BASE}/{ours.pk}/deliveries").json()
        assert listed["results"] == []
        with tenant_context(roster[("theirs", "owner")].restaurant):
            assert Delivery.objects.get(pk=theirs.pk).status == Delivery.Status.FAILED

    def test_a_delivery_of_another_endpoint_of_ours_is_404_under_this_one(self, roster):
        owner = roster[("ours", "owner")]
        endpoint = make_object("webhook_endpoint", owner.restaurant)
        delivery = make_object("webhook_delivery", owner.restaurant)
        response = api_client(owner).get(f"{BASE}/{endpoint.pk}/deliveries/{delivery.pk}")
        assert response.status_code == 404

    def test_resend_and_recover(self, roster):
        owner = roster[("ours", "owner")]
        delivery = make_object("webhook_delivery", owner.restaurant)
        client = api_client(owner)
        resent = post(client, f"{BASE}/{delivery.endpoint_id}/deliveries/{delivery.pk}/resend")
        assert resent.status_code == 202, resent.content
        assert resent.json()["status"] == "pending"
        assert resent.json()["message_id"] == delivery.message_id
        with tenant_context(owner.restaurant):
            Delivery.objects.filter(pk=delivery.pk).update(
                status=Delivery.Status.FAILED, next_attempt_at=None
            )
        recovered = post(
            client, f"{BASE}/{delivery.endpoint_id}/recover",
            {"since": (timezone.now() - timedelta(days=1)).isoformat()},
        )  # fmt: skip
        assert recovered.status_code == 202, recovered.content
        assert recovered.json() == {"deliveries": 1}
        future = post(
            client, f"{BASE}/{delivery.endpoint_id}/recover",
            {"since": (timezone.now() + timedelta(days=1)).isoformat()},
        )  # fmt: skip
        refusal(future, 400, "invalid", "since")
        assert [e.action for e in audit_events(owner.restaurant)] == ["webhook_endpoint.resent"] * 2

    def test_a_disabled_endpoint_sends_nothing_again_until_enabled(self, roster):
        owner = roster[("ours", "owner")]
        delivery = make_object("webhook_delivery", owner.restaurant)
        client = api_client(owner)
        patch(client, f"{BASE}/{delivery.endpoint_id}", {"enabled": False})
        refusal(
            post(client, f"{BASE}/{delivery.endpoint_id}/deliveries/{delivery.pk}/resend"),
            409, "endpoint_disabled",
        )  # fmt: skip
        refusal(
            post(client, f"{BASE}/{delivery.endpoint_id}/recover", {"since": "2026-01-01T00:00Z"}),
            409, "endpoint_disabled",
        )  # fmt: skip

    def test_a_test_message_is_a_pending_delivery_of_its_own(self, roster):
        owner = roster[("ours", "owner")]
        endpoint = make_object("webhook_endpoint", owner.restaurant)
        sent = post(api_client(owner), f"{BASE}/{endpoint.pk}/test")
        assert sent.status_code == 202, sent.content
        assert sent.json()["event_type"] == messages.TEST_EVENT_TYPE
        assert sent.json()["status"] == "pending"
        assert sent.json()["attempts_log"] == []
        assert endpoint.secret not in sent.content.decode()


# --- Strict input, no 500 ---------------------------------------------------------------------


def _nested(depth):
    value: object = "order.placed"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.django_db
class TestStrictInput:
    @pytest.mark.parametrize(
        "body",
        [
            {"url": ["https://hooks.example.com/"]},
            {"url": {"href": URL}},
            {"url": None},
            {"url": 5},
            {"url": "https://hooks.example.com/\u0000"},
            {"url": URL, "event_types": "order.placed"},
            {"url": URL, "event_types": [{"type": "order.placed"}]},
            {"url": URL, "event_types": [["order.placed"]]},
            {"url": URL, "event_types": _nested(200)},
            {"url": URL, "event_types": [None]},
            {"url": URL, "event_types": ["order.placed"] * 51},
            {"url": URL, "event_types": ["x" * 65]},
            {"url": URL, "enabled": "maybe"},
            {"url": URL, "description": "x" * 201},
            {"url": URL, "description": {"deep": _nested(200)}},
            {"url": "https://hooks.example.com/" + "a" * 2000},
            {},
        ],
    )
    def test_a_create_with_wrong_types_is_400(self, roster, body):
        response = post(owner_client(roster), BASE, body)
        assert response.status_code == 400, response.content
        assert set(response.json()) == {"type", "code", "detail", "attr", "errors"}
        assert endpoints(roster[("ours", "owner")].restaurant) == []

    def test_deeply_nested_json_is_400(self, roster):
        owner = roster[("ours", "owner")]
        endpoint = make_object("webhook_endpoint", owner.restaurant)
        deep = "[" * 5000 + "]" * 5000
        client = api_client(owner)
        for path, method in [
            (BASE, "post"),
            (f"{BASE}/{endpoint.pk}", "patch"),
            (f"{BASE}/{endpoint.pk}/recover", "post"),
        ]:
            body = '{"url": ' + deep + "}" if method == "post" else '{"event_types": ' + deep + "}"
            response = getattr(client, method)(path, body, content_type="application/json")
            assert response.status_code == 400, (path, response.content)

    @pytest.mark.parametrize(
        "body",
        [
            {"since": "yesterday"},
            {"since": 5},
            {"since": None},
            {"since": ["2026-01-01T00:00:00Z"]},
            {"since": "0001-01-01T00:00:00+01:00"},
            {"since": "9999-12-31T23:59:59-14:00"},
            {},
        ],
    )
    def test_a_recover_with_wrong_types_is_400(self, roster, body):
        owner = roster[("ours", "owner")]
        endpoint = make_object("webhook_endpoint", owner.restaurant)
        response = post(api_client(owner), f"{BASE}/{endpoint.pk}/recover", body)
        assert response.status_code == 400, response.content

    def test_patch_with_wrong_types_is_400_and_changes_nothing(self, roster):
        owner = roster[("ours", "owner")]
        endpoint = make_object("webhook_endpoint", owner.restaurant)
        client = api_client(owner)
        for body in (
            {"enabled": None},
            {"event_types": None},
            {"event_types": {"0": "order.placed"}},
            {"url": ""},
            {"description": ["x"]},
        ):
            response = patch(client, f"{BASE}/{endpoint.pk}", body)
            assert response.status_code == 400, (body, response.content)
        [after] = endpoints(owner.restaurant)
        assert (after.url, after.enabled, after.event_types) == (endpoint.url, True, [])
        assert audit_events(owner.restaurant) == []


# --- OPTIONS ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_options_describes_every_webhook_route(roster):
    owner = roster[("ours", "owner")]
    delivery = make_object("webhook_delivery", owner.restaurant)
    endpoint_path = f"{BASE}/{delivery.endpoint_id}"
    routes = {
        BASE: {"GET", "POST"},
        endpoint_path: {"GET", "PATCH", "DELETE"},
        f"{endpoint_path}/rotate-secret": {"POST"},
        f"{endpoint_path}/test": {"POST"},
        f"{endpoint_path}/recover": {"POST"},
        f"{endpoint_path}/deliveries": {"GET"},
        f"{endpoint_path}/deliveries/{delivery.pk}": {"GET"},
        f"{endpoint_path}/deliveries/{delivery.pk}/resend": {"POST"},
    }
    client = api_client(owner)
    for path, methods in routes.items():
        response = client.options(path)
        assert response.status_code == 200, (path, response.content)
        allowed = {method.strip() for method in response["Allow"].split(",")}
        assert methods | {"OPTIONS"} <= allowed, (path, allowed)
        assert set(response.json()) == {"name", "description", "renders", "parses"}
    kitchen = api_client(roster[("ours", "kitchen")])
    assert kitchen.options(BASE).status_code == 403


@pytest.mark.django_db
def test_an_endpoint_deleted_meanwhile_is_not_found_never_a_server_error(roster):
    """The services lock the endpoint's row first; a row deleted since the view read it is a
    404 (not a DoesNotExist, nor a foreign key error at COMMIT for a test message)."""
    from nordkestrel.errors import NotFoundError

    owner = roster[("ours", "owner")]
    delivery = make_object("webhook_delivery", owner.restaurant)
    actor = Actor(member=owner)
    with tenant_context(owner.restaurant):
        endpoint = Endpoint.objects.get(pk=delivery.endpoint_id)
        Endpoint.objects.filter(pk=endpoint.pk).delete()
        calls = [
            lambda: services.send_test(actor=actor, endpoint=endpoint),
            lambda: services.endpoint_rotate(actor=actor, endpoint=endpoint),
            lambda: services.endpoint_update(actor=actor, endpoint=endpoint, description="x"),
            lambda: services.endpoint_delete(actor=actor, endpoint=endpoint),
            lambda: services.recover(actor=actor, endpoint=endpoint, since=timezone.now()),
            lambda: services.resend(actor=actor, delivery=delivery),
        ]
        for call in calls:
            with pytest.raises(NotFoundError):
                call()
        assert not Delivery.objects.exists()


def test_a_key_changes_only_the_endpoints_created_with_it(roster):
    owner = roster[("ours", "owner")]
    grants = {"webhooks": "write", "orders": "read"}
    first = key_client(make_api_key(owner, grants=grants))
    second = key_client(make_api_key(owner, grants=grants))
    staffs = create(owner_client(roster)).json()["id"]
    own = create(first).json()["id"]

    for endpoint in (staffs, own):
        # Every key with the grant may read the list and the log.
        assert second.get(f"{BASE}/{endpoint}").status_code == 200
        for refused in (
            patch(second, f"{BASE}/{endpoint}", {"url": "https://elsewhere.example.com/"}),
            post(second, f"{BASE}/{endpoint}/rotate-secret"),
            post(second, f"{BASE}/{endpoint}/test"),
            second.delete(f"{BASE}/{endpoint}"),
        ):
            assert refused.status_code == 403, refused.content
            assert refused.json()["code"] == "not_endpoint_creator"
    with tenant_context(owner.restaurant):
        assert set(Endpoint.objects.values_list("url", flat=True)) == {URL}
        assert not Delivery.objects.exists()

    # The key that created one manages it; staff manage both.
    assert post(first, f"{BASE}/{own}/rotate-secret").status_code == 200
    assert post(first, f"{BASE}/{staffs}/rotate-secret").status_code == 403
    assert owner_client(roster).delete(f"{BASE}/{own}").status_code == 204
