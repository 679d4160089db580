"""What a key may do: its grants, never more than its creator, never the forbidden scopes."""

from collections.abc import Iterator
from typing import cast

import pytest

from apikeys import grants
from staff.roles import SCOPES, Role, Scope
from tests.factories import api_client, key_client, make_api_key
from tests.security.objects import make_object

pytestmark = pytest.mark.django_db

EVERY_GRANT = {name: resource.levels[-1].value for name, resource in grants.RESOURCES.items()}


def test_a_read_only_orders_key_reads_orders_and_nothing_else(roster):
    owner = roster[("ours", "owner")]
    secret = make_api_key(owner, grants={"orders": "read"})
    order = make_object("order", owner.restaurant)
    client = key_client(secret)
    assert client.get("/api/v1/orders").status_code == 200
    assert client.get(f"/api/v1/orders/{order.pk}").status_code == 200
    cancel = client.post(
        f"/api/v1/orders/{order.pk}/cancel", {"reason": "x"}, content_type="application/json"
    )
    assert cancel.status_code == 403
    assert cancel["Nordkestrel-Required-Scope"] == Scope.ORDERS_CANCEL.value
    assert Scope.ORDERS_CANCEL.value in cancel.json()["detail"]
    customers = client.get("/api/v1/customers")
    assert customers.status_code == 403
    assert customers["Nordkestrel-Required-Scope"] == Scope.CUSTOMERS_READ.value
    assert client.get("/api/v1/menus").status_code == 403
    # Every key reads the restaurant's own settings, and only reads them.
    assert client.get("/api/v1/restaurant").status_code == 200
    assert (
        client.patch(
            "/api/v1/restaurant", {"phone": "+358 40 1"}, content_type="application/json"
        ).status_code
        == 403
    )


def test_a_key_with_every_grant_still_cannot_touch_staff_keys_or_payouts(roster):
    owner = roster[("ours", "owner")]
    client = key_client(make_api_key(owner, grants=EVERY_GRANT))
    refused = {
        ("get", "/api/v1/staff", Scope.STAFF_READ),
        ("post", "/api/v1/staff", Scope.STAFF_WRITE),
        ("get", "/api/v1/api-keys", Scope.API_KEYS_READ),
        ("post", "/api/v1/api-keys", Scope.API_KEYS_MANAGE),
        ("get", "/api/v1/api-keys/settings", Scope.API_KEYS_READ),
        ("get", "/api/v1/payments/payouts", Scope.PAYOUTS_READ),
        ("post", "/api/v1/payments/payouts", Scope.PAYOUTS_TRIGGER),
        ("post", "/api/v1/payments/account", Scope.PAYMENTS_CONNECT),
        ("post", "/api/v1/restaurant/deletion", Scope.RESTAURANT_DELETE),
        ("get", "/api/v1/audit-events", Scope.AUDIT_READ),
    }
    for method, path, scope in sorted(refused):
        response = getattr(client, method)(path, {}, content_type="application/json")
        assert response.status_code == 403, (method, path, response.content)
        assert response.json()["code"] == "permission_denied", (method, path)
        assert response["Nordkestrel-Required-Scope"] == scope.value, (method, path)
    assert client.get("/api/v1/menus").status_code == 200
    assert client.get("/api/v1/customers").status_code == 200


def test_no_key_holds_a_scope_no_key_may_hold():
    assert not grants.scopes_of(EVERY_GRANT) & grants.NEVER_GRANTED
    assert Scope.API_KEYS_MANAGE in grants.NEVER_GRANTED
    assert Scope.STAFF_WRITE in grants.NEVER_GRANTED
    assert Scope.PAYOUTS_TRIGGER in grants.NEVER_GRANTED


def test_only_owners_and_admins_create_keys_and_within_their_role(roster):
    admin = roster[("ours", "admin")]
    # Everything grantable is within an Admin's role; a Manager cannot create keys at all.
    assert grants.scopes_of(EVERY_GRANT) <= SCOPES[Role.ADMIN]
    created = api_client(admin).post(
        "/api/v1/api-keys", {"name": "All", "grants": EVERY_GRANT}, content_type="application/json"
    )
    assert created.status_code == 201
    manager = api_client(roster[("ours", "manager")]).post(
        "/api/v1/api-keys",
        {"name": "M", "grants": {"menus": "read"}},
        content_type="application/json",
    )
    assert manager.status_code == 403


def test_the_service_refuses_a_grant_beyond_the_creators_scopes(roster):
    """Defence in depth, for a role table where a key manager lacks some grantable scope."""
    from apikeys import services
    from nordkestrel.errors import InvalidInput
    from staff.auth import Actor
    from tenants.context import tenant_context

    class NarrowActor(Actor):
        @property
        def scopes(self):
            return frozenset({Scope.API_KEYS_MANAGE, Scope.MENUS_READ, Scope.RESTAURANT_READ})

    owner = roster[("ours", "owner")]
    with tenant_context(owner.restaurant), pytest.raises(InvalidInput) as refused:
        services.key_create(actor=NarrowActor(member=owner), name="x", grants={"menus": "write"})
    assert refused.value.code == "scope_not_held"
    assert refused.value.attr == "grants.menus"


def test_an_export_needs_the_grants_of_what_it_holds(roster):
    owner = roster[("ours", "owner")]
    exports_only = key_client(make_api_key(owner, grants={"exports": "write"}))
    refused = exports_only.get("/api/v1/exports/customers.csv")
    assert refused.status_code == 403
    assert refused["Nordkestrel-Required-Scope"] == Scope.CUSTOMERS_READ.value
    allowed = key_client(make_api_key(owner, grants={"exports": "write", "customers": "read"}))
    response = allowed.get("/api/v1/exports/customers.csv")
    assert response.status_code == 200
    body = b"".join(cast(Iterator[bytes], getattr(response, "streaming_content")))  # noqa: B009
    assert b"email" in body.splitlines()[0]


def test_the_key_acts_with_its_creators_role_now(roster):
    """An Admin demoted to Manager: their key keeps only what a Manager may do."""
    from staff.models import StaffMember
    from tenants.context import tenant_context

    admin = roster[("ours", "admin")]
    secret = make_api_key(admin, grants={"exports": "write", "menus": "read"})
    client = key_client(secret)
    assert client.get("/api/v1/exports").status_code == 200
    with tenant_context(admin.restaurant):
        StaffMember.objects.filter(pk=admin.pk).update(role=Role.MANAGER)
    from apikeys import credentials

    credentials._memo.clear()
    assert client.get("/api/v1/exports").status_code == 403
    assert client.get("/api/v1/menus").status_code == 200


def test_unknown_grants_and_levels_are_refused(roster):
    client = api_client(roster[("ours", "owner")])
    for body in (
        {"name": "x", "grants": {"staff": "read"}},
        {"name": "x", "grants": {"customers": "write"}},
        {"name": "x", "grants": {"orders": "admin"}},
        {"name": "x", "grants": {}},
        {"name": "x", "grants": {"restaurant": "none"}},
        {"name": "x", "grants": {"restaurant": "read"}},
        {"name": "x", "grants": {"audit": "read"}},
    ):
        response = client.post("/api/v1/api-keys", body, content_type="application/json")
        assert response.status_code == 400, body


def test_me_shows_the_keys_scopes_and_none_of_the_creators_other_restaurants(roster):
    from tests.factories import make_staff

    owner = roster[("ours", "owner")]
    theirs = roster[("theirs", "owner")].restaurant
    make_staff(theirs, Role.OWNER, clerk_user_id=owner.clerk_user_id)  # also an Owner there
    assert len(api_client(owner).get("/api/v1/me").json()["memberships"]) == 2
    me = key_client(make_api_key(owner, grants={"menus": "read"})).get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["memberships"] == []
    assert me.json()["scopes"] == [Scope.MENUS_READ.value, Scope.RESTAURANT_READ.value]
    assert "theirs" not in me.content.decode()


def test_the_grantable_resources_and_their_scopes_are_exactly_these():
    """A resource added (or its scopes changed) is a decision this test makes visible."""
    expected = {
        "restaurant": ({Scope.RESTAURANT_READ}, {Scope.RESTAURANT_WRITE}),
        "menus": (
            {Scope.MENUS_READ},
            {Scope.MENUS_WRITE, Scope.MENUS_AVAILABILITY, Scope.MENUS_PUBLISH},
        ),
        "orders": (
            {Scope.ORDERS_READ, Scope.ORDERS_CONTACT},
            {Scope.ORDERS_PROGRESS, Scope.ORDERS_CANCEL},
        ),
        "customers": ({Scope.CUSTOMERS_READ}, set()),
        "promotions": ({Scope.PROMOTIONS_READ}, {Scope.PROMOTIONS_WRITE}),
        "payments": (set(), {Scope.PAYMENTS_DISPUTES, Scope.PAYMENTS_REFUND}),
        "exports": (set(), {Scope.EXPORTS_CREATE}),
        "webhooks": ({Scope.WEBHOOKS_READ}, {Scope.WEBHOOKS_MANAGE}),
    }
    assert {
        name: (set(resource.read), set(resource.write))
        for name, resource in grants.RESOURCES.items()
    } == expected
    assert [level.value for level in grants.RESOURCES["webhooks"].levels] == [
        "none", "read", "write",
    ]  # fmt: skip
    assert grants.scopes_of({"webhooks": "read"}) >= {Scope.WEBHOOKS_READ}
    assert Scope.WEBHOOKS_MANAGE not in grants.scopes_of({"webhooks": "read"})
    assert grants.scopes_of({"webhooks": "write"}) >= {Scope.WEBHOOKS_READ, Scope.WEBHOOKS_MANAGE}


WEBHOOK_BODY = {"url": "https://hooks.example.com/nordkestrel", "event_types": ["menu.published"]}


def _create_endpoint(client):
    return client.post("/api/v1/webhook-endpoints", WEBHOOK_BODY, content_type="application/json")


def test_a_webhooks_read_key_lists_endpoints_but_cannot_create_one(roster):
    owner = roster[("ours", "owner")]
    endpoint = make_object("webhook_endpoint", owner.restaurant)
    client = key_client(make_api_key(owner, grants={"webhooks": "read", "menus": "read"}))
    listed = client.get("/api/v1/webhook-endpoints")
    assert listed.status_code == 200, listed.content
    assert [row["id"] for row in listed.json()["results"]] == [endpoint.pk]
    assert client.get(f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries").status_code == 200
    refused = [
        _create_endpoint(client),
        client.patch(
            f"/api/v1/webhook-endpoints/{endpoint.pk}", {"description": "x"},
            content_type="application/json",
        ),
        client.post(f"/api/v1/webhook-endpoints/{endpoint.pk}/rotate-secret"),
        client.post(f"/api/v1/webhook-endpoints/{endpoint.pk}/test"),
        client.delete(f"/api/v1/webhook-endpoints/{endpoint.pk}"),
    ]  # fmt: skip
    for response in refused:
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "permission_denied"
        assert response["Nordkestrel-Required-Scope"] == Scope.WEBHOOKS_MANAGE.value


def test_a_webhooks_write_key_creates_an_endpoint(roster):
    owner = roster[("ours", "owner")]
    client = key_client(make_api_key(owner, grants={"webhooks": "write", "menus": "read"}))
    created = _create_endpoint(client)
    assert created.status_code == 201, created.content
    assert created.json()["secret"].startswith("whsec_")
    assert created.json()["event_types"] == ["menu.published"]
    [listed] = client.get("/api/v1/webhook-endpoints").json()["results"]
    assert listed["id"] == created.json()["id"]


def test_a_key_without_the_webhooks_grant_is_refused_with_the_scope_it_lacks(roster):
    owner = roster[("ours", "owner")]
    endpoint = make_object("webhook_endpoint", owner.restaurant)
    client = key_client(make_api_key(owner, grants={"menus": "write", "orders": "write"}))
    for method, path, scope in [
        ("get", "/api/v1/webhook-endpoints", Scope.WEBHOOKS_READ),
        ("post", "/api/v1/webhook-endpoints", Scope.WEBHOOKS_MANAGE),
        ("get", f"/api/v1/webhook-endpoints/{endpoint.pk}", Scope.WEBHOOKS_READ),
        ("get", f"/api/v1/webhook-endpoints/{endpoint.pk}/deliveries", Scope.WEBHOOKS_READ),
    ]:
        body = WEBHOOK_BODY if method == "post" else {}
        response = getattr(client, method)(path, body, content_type="application/json")
        assert response.status_code == 403, (method, path, response.content)
        assert response["Nordkestrel-Required-Scope"] == scope.value, (method, path)
