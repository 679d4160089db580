"""Two writes to the keys at once: the restaurant row and the key row serialise them, in the
project's lock order (restaurant, then the key, then the audit chain)."""

import pytest

from apikeys import services
from apikeys.models import ApiKey, ApiKeyRoute
from nordkestrel.errors import ConflictError
from staff.auth import Actor
from tenants.context import tenant_context
from tests.factories import make_api_key, run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_creates_at_the_limit_admit_exactly_one(roster, monkeypatch):
    owner = roster[("ours", "owner")]
    monkeypatch.setattr(services, "MAX_ACTIVE_KEYS", 2)
    make_api_key(owner)

    def create():
        with tenant_context(owner.restaurant):
            return services.key_create(
                actor=Actor(member=owner), name="x", grants={"menus": "read"}
            )

    results = run_concurrently(create, create)
    assert sum(isinstance(r, services.IssuedKey) for r in results) == 1, results
    assert sum(isinstance(r, ConflictError) for r in results) == 1, results
    with tenant_context(owner.restaurant):
        assert ApiKey.objects.count() == 2


def test_a_roll_and_a_revoke_at_once_leave_a_revoked_key_with_no_route(roster):
    owner = roster[("ours", "owner")]
    make_api_key(owner)
    with tenant_context(owner.restaurant):
        key = ApiKey.objects.get()

    def roll():
        with tenant_context(owner.restaurant):
            return services.key_roll(actor=Actor(member=owner), key=key)

    def revoke():
        with tenant_context(owner.restaurant):
            return services.key_revoke(actor=Actor(member=owner), key=key)

    results = run_concurrently(roll, revoke)
    # Whichever went first, the revoke wins: a roll after it finds the key no longer active.
    assert not any(isinstance(r, Exception) and not isinstance(r, ConflictError) for r in results)
    with tenant_context(owner.restaurant):
        assert ApiKey.objects.get().revoked_at is not None
        assert not ApiKeyRoute.objects.exists()
