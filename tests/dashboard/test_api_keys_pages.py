"""The API keys pages: create (the secret shown once), roll, revoke, edit, the rate limit."""

import re

import pytest
from django.test import Client

from apikeys import services as apikey_services
from apikeys import tokens
from apikeys.models import ApiKey, ApiKeySettings
from tenants.context import tenant_context
from tests.factories import key_client, make_api_key, signed_token, token_for

pytestmark = pytest.mark.django_db

PAGE = "/dashboard/api-keys"
ORDERS = "/api/v1/orders"
ROLL_NOW = {"overlap_hours": "0", "expires_in_days": "90"}


def signed_in(member, **token_claims):
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token_for(member, **token_claims)
    return client


def create(client, **fields):
    data = {
        "name": "Till",
        "grant_orders": "read",
        "grant_menus": "none",
        "expires_in_days": "90",
        "allowed_ips": "",
        **fields,
    }
    return client.post(PAGE, data)


def secret_in(response) -> str:
    found = tokens.PATTERN.findall(response.content.decode())
    assert len(set(found)) == 1, found
    return found[0]


def keys(restaurant):
    with tenant_context(restaurant):
        return list(ApiKey.objects.order_by("id"))


def test_an_owner_creates_a_key_and_sees_its_secret_once(roster):
    owner = roster[("ours", "owner")]
    client = signed_in(owner)
    form = client.get(PAGE)
    assert form.status_code == 200
    assert 'name="grant_orders"' in form.content.decode()

    response = create(client, allowed_ips="203.0.113.0/24\n\n 2001:db8::1 \n")

    # The answer to the POST itself carries the secret: no redirect, never cached.
    assert response.status_code == 200
    assert "Location" not in response
    assert "no-store" in response["Cache-Control"]
    secret = secret_in(response)
    body = response.content.decode()
    assert "it will not be shown again" in body
    assert 'data-copy-target="api-key-secret"' in body
    assert "dashboard/apikeys.js" in body
    [key] = keys(owner.restaurant)
    assert key.secret_hash == tokens.digest(secret)
    assert key.name == "Till" and key.created_by_id == owner.pk
    assert key.grants["orders"] == "read" and key.grants["menus"] == "none"
    assert key.allowed_ips == ["203.0.113.0/24", "2001:db8::1/128"]
    assert secret not in str(dict(client.session))

    listed = client.get(PAGE).content.decode()
    assert secret not in listed
    assert tokens.PATTERN.search(listed) is None
    assert f"nk_test_…{secret[-4:]}" in listed
    assert "orders: read" in listed
    assert "203.0.113.0/24" in listed
    assert secret not in client.get(f"{PAGE}/{key.pk}").content.decode()
    # The key works on the API, within the address ranges it was given.
    assert key_client(secret).get(ORDERS, REMOTE_ADDR="203.0.113.9").status_code == 200
    # Its use shows on the list (still a mark in Redis, not yet in the database).
    assert "Never" not in client.get(PAGE).content.decode().split("api-key-row", 1)[1]


def test_roll_shows_a_new_secret_and_ends_the_old_one(roster):
    owner = roster[("ours", "owner")]
    client = signed_in(owner)
    old = secret_in(create(client))
    [key] = keys(owner.restaurant)

    rolled = client.post(f"{PAGE}/{key.pk}/roll", {"overlap_hours": "0", "expires_in_days": "30"})

    assert rolled.status_code == 200
    assert "no-store" in rolled["Cache-Control"]
    new = secret_in(rolled)
    assert new != old
    assert "The previous secret has stopped working." in rolled.content.decode()
    assert key_client(new).get(ORDERS).status_code == 200
    assert key_client(old).get(ORDERS).status_code == 401
    assert new not in client.get(f"{PAGE}/{key.pk}").content.decode()


def test_roll_with_an_overlap_keeps_the_old_secret_for_a_while(roster):
    owner = roster[("ours", "owner")]
    client = signed_in(owner)
    old = secret_in(create(client))
    [key] = keys(owner.restaurant)

    rolled = client.post(f"{PAGE}/{key.pk}/roll", {"overlap_hours": "24", "expires_in_days": "90"})

    assert rolled.status_code == 200
    assert "The previous secret keeps working until" in rolled.content.decode()
    assert key_client(old).get(ORDERS).status_code == 200
    page = client.get(f"{PAGE}/{key.pk}").content.decode()
    assert f"…{old[-4:]}</code> works until" in page
    refused = client.post(f"{PAGE}/{key.pk}/roll", {"overlap_hours": "169"})
    assert refused.status_code == 400
    assert tokens.PATTERN.search(refused.content.decode()) is None


def test_revoke_asks_first_then_stops_the_key(roster):
    owner = roster[("ours", "owner")]
    client = signed_in(owner)
    secret = secret_in(create(client))
    [key] = keys(owner.restaurant)

    confirm = client.get(f"{PAGE}/{key.pk}/revoke")
    assert confirm.status_code == 200
    assert "Revoke Till?" in confirm.content.decode()
    assert keys(owner.restaurant)[0].revoked_at is None

    done = client.post(f"{PAGE}/{key.pk}/revoke")

    assert done.status_code == 303
    assert done["Location"] == PAGE
    assert keys(owner.restaurant)[0].revoked_at is not None
    assert key_client(secret).get(ORDERS).status_code == 401
    listed = client.get(PAGE).content.decode()
    assert "Revoked Till" in listed
    assert "badge-revoked" in listed
    # A revoked key has nothing left to change or roll.
    page = client.get(f"{PAGE}/{key.pk}").content.decode()
    assert "roll-key-form" not in page and "edit-key-form" not in page
    assert client.get(f"{PAGE}/{key.pk}/revoke").status_code == 303
    assert client.post(f"{PAGE}/{key.pk}/roll", ROLL_NOW).status_code == 409


@pytest.mark.parametrize("role", ["manager", "cashier", "kitchen"])
def test_below_admin_the_pages_are_refused(roster, role):
    client = signed_in(roster[("ours", role)])
    secret = make_api_key(roster[("ours", "owner")])
    [key] = keys(roster[("ours", "owner")].restaurant)

    page = client.get(PAGE)
    assert page.status_code == 403
    assert "Your role does not give access to this page." in page.content.decode()
    assert create(client).status_code == 403
    assert client.post(f"{PAGE}/{key.pk}/revoke").status_code == 403
    assert client.post(f"{PAGE}/{key.pk}/roll", ROLL_NOW).status_code == 403
    assert len(keys(key.restaurant)) == 1 and keys(key.restaurant)[0].revoked_at is None
    assert key_client(secret).get(ORDERS).status_code == 200
    assert "API keys" not in client.get("/dashboard/").content.decode()


def test_owner_and_admin_have_the_nav_entry(roster):
    for role in ("owner", "admin"):
        home = signed_in(roster[("ours", role)]).get("/dashboard/").content.decode()
        assert f'href="{PAGE}"' in home


def test_the_admin_sees_the_services_refusals_next_to_the_form(roster, settings):
    settings.API_KEY_CREATE_RATE = "1000/h"
    admin = roster[("ours", "admin")]
    client = signed_in(admin)

    unknown_level = create(client, grant_orders="admin")
    assert unknown_level.status_code == 400
    assert "Select a valid choice" in unknown_level.content.decode()
    no_write_level = create(client, grant_customers="write")
    assert no_write_level.status_code == 400

    nothing = create(client, grant_orders="none")
    assert nothing.status_code == 400
    assert "Grant the key at least one resource." in nothing.content.decode()

    bad_range = create(client, allowed_ips="10.0.0.0/8\nnot-an-address")
    assert bad_range.status_code == 400
    body = bad_range.content.decode()
    assert "&#x27;not-an-address&#x27; is not an IP address or CIDR range" in body
    assert tokens.PATTERN.search(body) is None
    assert keys(admin.restaurant) == []

    for n in range(apikey_services.MAX_ACTIVE_KEYS):
        make_api_key(admin, name=f"Key {n}")
    too_many = create(client)
    assert too_many.status_code == 409
    assert "at most 50 active keys; revoke one first" in too_many.content.decode()
    assert tokens.PATTERN.search(too_many.content.decode()) is None
    assert len(keys(admin.restaurant)) == apikey_services.MAX_ACTIVE_KEYS


def test_a_key_name_is_escaped(roster):
    owner = roster[("ours", "owner")]
    client = signed_in(owner)
    name = '<script>alert("x")</script>'
    created = create(client, name=name)
    assert created.status_code == 200
    [key] = keys(owner.restaurant)
    for page in (created, client.get(PAGE), client.get(f"{PAGE}/{key.pk}")):
        body = page.content.decode()
        assert "<script>alert" not in body
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


def test_edit_the_name_and_address_ranges(roster):
    owner = roster[("ours", "owner")]
    make_api_key(owner, name="Old name")
    [key] = keys(owner.restaurant)
    client = signed_in(owner)
    page = client.get(f"{PAGE}/{key.pk}")
    assert page.status_code == 200
    assert 'value="Old name"' in page.content.decode()

    saved = client.post(f"{PAGE}/{key.pk}", {"name": "Kiosk", "allowed_ips": "198.51.100.7"})

    assert saved.status_code == 303
    [key] = keys(owner.restaurant)
    assert (key.name, key.allowed_ips) == ("Kiosk", ["198.51.100.7/32"])
    assert "Saved Kiosk." in client.get(saved["Location"]).content.decode()
    refused = client.post(f"{PAGE}/{key.pk}", {"name": "Kiosk", "allowed_ips": "300.1.1.1"})
    assert refused.status_code == 400
    assert "is not an IP address or CIDR range" in refused.content.decode()
    assert keys(owner.restaurant)[0].allowed_ips == ["198.51.100.7/32"]


def test_the_rate_limit_is_shown_and_changed(roster):
    owner = roster[("ours", "owner")]
    client = signed_in(owner)
    assert 'name="rate_limit_per_minute" value="600"' in client.get(PAGE).content.decode()

    saved = client.post(f"{PAGE}/settings", {"rate_limit_per_minute": "120"})

    assert saved.status_code == 303
    assert 'name="rate_limit_per_minute" value="120"' in client.get(PAGE).content.decode()
    with tenant_context(owner.restaurant):
        assert ApiKeySettings.objects.get().rate_limit_per_minute == 120
    for wrong in ("9", "10001", "many"):
        refused = client.post(f"{PAGE}/settings", {"rate_limit_per_minute": wrong})
        assert refused.status_code == 400
    with tenant_context(owner.restaurant):
        assert ApiKeySettings.objects.get().rate_limit_per_minute == 120


def test_times_are_in_the_restaurants_zone(roster):
    owner = roster[("ours", "owner")]
    restaurant = owner.restaurant
    restaurant.timezone = "Pacific/Auckland"
    restaurant.save()
    make_api_key(owner)
    [key] = keys(restaurant)
    body = signed_in(owner).get(PAGE).content.decode()
    local = key.expires_at.astimezone(restaurant.zone)
    assert f"{local:%Y-%m-%d %H:%M}" in body
    assert "Times are in Pacific/Auckland." in body


def test_another_restaurants_key_is_not_found(roster):
    make_api_key(roster[("theirs", "owner")], name="Their till")
    [theirs] = keys(roster[("theirs", "owner")].restaurant)
    client = signed_in(roster[("ours", "owner")])
    assert "Their till" not in client.get(PAGE).content.decode()
    assert client.get(f"{PAGE}/{theirs.pk}").status_code == 404
    assert client.get(f"{PAGE}/{theirs.pk}/revoke").status_code == 404
    assert client.post(f"{PAGE}/{theirs.pk}/revoke").status_code == 404
    assert client.post(f"{PAGE}/{theirs.pk}/roll", ROLL_NOW).status_code == 404
    assert keys(theirs.restaurant)[0].revoked_at is None


def test_managing_keys_asks_for_a_recent_second_factor(roster, restaurants):
    ours = restaurants[0]
    ours.require_mfa_for_sensitive_actions = True
    ours.save()
    owner = roster[("ours", "owner")]
    stale = Client(raise_request_exception=False)
    stale.cookies["__session"] = signed_token(owner, fva=(0, -1))

    # Reading is not sensitive; the page says what managing asks for.
    page = stale.get(PAGE)
    assert page.status_code == 200
    assert "verified your second factor in the last 10 minutes" in page.content.decode()
    refused = create(stale)
    assert refused.status_code == 403
    assert "Verify your second factor again" in refused.content.decode()
    assert tokens.PATTERN.search(refused.content.decode()) is None
    assert keys(ours) == []

    fresh = Client(raise_request_exception=False)
    fresh.cookies["__session"] = signed_token(owner, fva=(0, 2))
    assert create(fresh).status_code == 200
    assert len(keys(ours)) == 1


def test_no_secret_reaches_the_logs(roster, caplog):
    client = signed_in(roster[("ours", "owner")])
    with caplog.at_level("DEBUG"):
        secret = secret_in(create(client))
        [key] = keys(roster[("ours", "owner")].restaurant)
        rolled = secret_in(client.post(f"{PAGE}/{key.pk}/roll", ROLL_NOW))
    assert not re.search(re.escape(secret) + "|" + re.escape(rolled), caplog.text)


def test_only_the_creator_is_offered_the_roll(roster):
    owner, admin = roster[("ours", "owner")], roster[("ours", "admin")]
    make_api_key(owner, name="Owners key")
    key = keys(owner.restaurant)[0]
    page = signed_in(admin).get(f"{PAGE}/{key.pk}").content.decode()
    assert 'data-testid="roll-key-form"' not in page
    assert "who created this key, can roll it" in page
    own = signed_in(owner).get(f"{PAGE}/{key.pk}").content.decode()
    assert 'data-testid="roll-key-form"' in own
