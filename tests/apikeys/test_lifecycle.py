"""An API key from creation to revocation, through the API an Owner uses."""

import time
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apikeys import credentials, tokens
from apikeys.models import ApiKey
from audit.models import AuditEvent
from tenants.context import tenant_context
from tests.factories import api_client, key_client, make_api_key, token_for

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders"


def create(owner, **body):
    body = {"name": "POS", "grants": {"orders": "read"}, **body}
    return api_client(owner).post("/api/v1/api-keys", body, content_type="application/json")


def test_create_shows_the_secret_once_and_stores_only_its_hash(roster):
    owner = roster[("ours", "owner")]
    response = create(owner)
    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["secret"]
    assert tokens.PATTERN.fullmatch(secret)
    assert secret.startswith("nk_test_")
    assert body["last4"] == secret[-4:]
    assert body["status"] == "active"
    assert body["grants"]["orders"] == "read" and body["grants"]["menus"] == "none"
    assert body["created_by"]["id"] == owner.pk
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=89) < expires - timezone.now() <= timedelta(days=90)
    with tenant_context(owner.restaurant):
        key = ApiKey.objects.get(pk=body["id"])
        assert key.secret_hash == tokens.digest(secret)
        assert secret not in str(ApiKey.objects.values().get(pk=key.pk))
        event = AuditEvent.objects.get(action="api_key.created")
        assert secret not in str(event.changes)
    listed = api_client(owner).get("/api/v1/api-keys").json()["results"]
    assert [item["id"] for item in listed] == [body["id"]]
    assert "secret" not in listed[0]


def test_the_whole_lifecycle(roster, monkeypatch):
    owner = roster[("ours", "owner")]
    first = create(owner).json()
    old = first["secret"]
    assert key_client(old).get(ORDERS).status_code == 200
    # Roll with an overlap: both secrets work.
    rolled = api_client(owner).post(
        f"/api/v1/api-keys/{first['id']}/roll",
        {"overlap_hours": 1},
        content_type="application/json",
    )
    assert rolled.status_code == 200, rolled.content
    new = rolled.json()["secret"]
    assert new != old
    assert rolled.json()["previous_last4"] == old[-4:]
    assert key_client(new).get(ORDERS).status_code == 200
    assert key_client(old).get(ORDERS).status_code == 200
    # The overlap ends: the old secret is refused like a forged token; the new one works.
    later = timezone.now() + timedelta(hours=1, seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    refused = key_client(old).get(ORDERS)
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"
    assert key_client(new).get(ORDERS).status_code == 200
    monkeypatch.undo()
    # Revoke: refused at once.
    revoked = api_client(owner).post(f"/api/v1/api-keys/{first['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert key_client(new).get(ORDERS).status_code == 401
    with tenant_context(owner.restaurant):
        actions = list(
            AuditEvent.objects.filter(action__startswith="api_key.").values_list(
                "action", flat=True
            )
        )
    assert sorted(actions) == ["api_key.created", "api_key.revoked", "api_key.rolled"]


def test_a_refused_key_answers_exactly_like_a_forged_token(roster):
    owner = roster[("ours", "owner")]
    secret = make_api_key(owner)
    token = token_for(owner)
    forged_token = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    forged = api_client(None).get(ORDERS, HTTP_AUTHORIZATION=f"Bearer {forged_token}")
    mistyped = secret[:20] + ("A" if secret[20] != "A" else "B") + secret[21:]
    made_up = tokens.generate()  # well formed, never issued
    live = tokens.generate("live")
    for key in (mistyped, made_up, live, "nk_test_short", secret + "x"):
        response = key_client(key).get(ORDERS)
        assert response.status_code == 401, key
        assert response.json() == forged.json()
        assert response["WWW-Authenticate"] == forged["WWW-Authenticate"]


def test_the_checksum_refuses_a_one_character_change_without_a_query(roster):
    secret = make_api_key(roster[("ours", "owner")])
    for position in (8, 20, 39, len(secret) - 1):
        changed = (
            secret[:position] + ("a" if secret[position] != "a" else "b") + secret[position + 1 :]
        )
        assert not tokens.well_formed(changed)
        with CaptureQueriesContext(connection) as queries:
            assert key_client(changed).get(ORDERS).status_code == 401
        assert not [q for q in queries if "nordkestrel_api_key" in q["sql"]]


def test_a_warm_key_costs_no_query_and_a_cold_one_one_lookup(roster):
    secret = make_api_key(roster[("ours", "owner")])
    credentials._memo.clear()
    with CaptureQueriesContext(connection) as cold:
        assert key_client(secret).get("/api/v1/me").status_code == 200
    lookups = [q for q in cold if "nordkestrel_api_key" in q["sql"]]
    assert len(lookups) == 1
    with CaptureQueriesContext(connection) as warm:
        key_client(secret).get("/api/v1/me")
    assert not [
        q for q in warm if "nordkestrel_api_key" in q["sql"] or "staff_staffmember" in q["sql"]
    ]


def test_expiry(roster, monkeypatch):
    secret = make_api_key(roster[("ours", "owner")], expires_in_days=1)
    assert key_client(secret).get(ORDERS).status_code == 200
    later = timezone.now() + timedelta(days=1, seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert key_client(secret).get(ORDERS).status_code == 401


@pytest.mark.parametrize("days", [0, 366])
def test_expiry_is_mandatory_and_at_most_a_year(roster, days):
    response = create(roster[("ours", "owner")], expires_in_days=days)
    assert response.status_code == 400
    assert response.json()["attr"] == "expires_in_days"


def test_ip_ranges(roster):
    owner = roster[("ours", "owner")]
    inside = make_api_key(owner, allowed_ips=["127.0.0.0/8"])
    outside = make_api_key(owner, allowed_ips=["203.0.113.0/24", "2001:db8::/32"])
    assert key_client(inside).get(ORDERS).status_code == 200
    refused = key_client(outside).get(ORDERS)
    assert refused.status_code == 403
    assert refused.json()["code"] == "ip_not_allowed"
    bad = create(owner, allowed_ips=["10.0.0.0/8", "not-an-ip"])
    assert bad.status_code == 400
    assert bad.json()["attr"] == "allowed_ips.1"


def test_a_key_whose_creator_left_stops_working(roster):
    admin = roster[("ours", "admin")]
    secret = make_api_key(admin)
    assert key_client(secret).get(ORDERS).status_code == 200
    with tenant_context(admin.restaurant):
        admin.active = False
        admin.save(update_fields=["active"])
    credentials._memo.clear()
    assert key_client(secret).get(ORDERS).status_code == 401
    listed = api_client(roster[("ours", "owner")]).get("/api/v1/api-keys").json()["results"]
    assert listed[0]["status"] == "creator_inactive"


def test_keys_work_on_the_api_only_never_the_dashboard(roster):
    secret = make_api_key(roster[("ours", "owner")], grants={"menus": "write"})
    response = key_client(secret).get("/dashboard/")
    assert response.status_code == 302
    assert "sign-in" in response["Location"]


def test_another_process_stops_honouring_a_revoked_key_within_the_cache_seconds(
    roster, monkeypatch, settings
):
    """The revoke in another process cannot clear this one's memory: the key lives here at
    most API_KEY_CACHE_SECONDS longer."""
    settings.API_KEY_CACHE_SECONDS = 5
    owner = roster[("ours", "owner")]
    secret = make_api_key(owner)
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    assert key_client(secret).get(ORDERS).status_code == 200
    with tenant_context(owner.restaurant):  # revoked elsewhere: this process's memo stays
        ApiKey.objects.update(revoked_at=timezone.now())
    clock[0] += 4.9
    assert key_client(secret).get(ORDERS).status_code == 200
    clock[0] += 0.2
    assert key_client(secret).get(ORDERS).status_code == 401


def forged_answer(member):
    token = token_for(member)
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    return api_client(None).get(ORDERS, HTTP_AUTHORIZATION=f"Bearer {forged}")


def assert_refused_like_a_forgery(response, forged):
    assert response.status_code == 401
    assert response.json() == forged.json()
    assert response["WWW-Authenticate"] == forged["WWW-Authenticate"]


def test_revoked_expired_and_orphaned_keys_answer_like_a_forgery(roster, monkeypatch):
    owner, admin = roster[("ours", "owner")], roster[("ours", "admin")]
    forged = forged_answer(owner)
    revoked = create(owner).json()
    api_client(owner).post(f"/api/v1/api-keys/{revoked['id']}/revoke")
    orphaned = make_api_key(admin)
    with tenant_context(admin.restaurant):
        admin.active = False
        admin.save(update_fields=["active"])
    expiring = make_api_key(owner, expires_in_days=1)
    assert_refused_like_a_forgery(key_client(revoked["secret"]).get(ORDERS), forged)
    assert_refused_like_a_forgery(key_client(orphaned).get(ORDERS), forged)
    later = timezone.now() + timedelta(days=1, seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert_refused_like_a_forgery(key_client(expiring).get(ORDERS), forged)


def test_a_second_roll_ends_the_first_overlap(roster):
    owner = roster[("ours", "owner")]
    first = create(owner).json()
    client = api_client(owner)
    url = f"/api/v1/api-keys/{first['id']}/roll"
    second = client.post(url, {"overlap_hours": 24}, content_type="application/json").json()
    third = client.post(url, {"overlap_hours": 24}, content_type="application/json").json()
    assert key_client(first["secret"]).get(ORDERS).status_code == 401
    assert key_client(second["secret"]).get(ORDERS).status_code == 200
    assert key_client(third["secret"]).get(ORDERS).status_code == 200


def test_only_the_creator_rolls_a_key_and_the_secret_is_never_cached(roster):
    owner, admin = roster[("ours", "owner")], roster[("ours", "admin")]
    created = create(owner)
    assert created["Cache-Control"] == "no-store"
    key_id = created.json()["id"]
    refused = api_client(admin).post(
        f"/api/v1/api-keys/{key_id}/roll", {}, content_type="application/json"
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_key_creator"
    rolled = api_client(owner).post(
        f"/api/v1/api-keys/{key_id}/roll", {}, content_type="application/json"
    )
    assert rolled.status_code == 200
    assert rolled["Cache-Control"] == "no-store"
    # Anyone who manages keys may revoke it.
    assert api_client(admin).post(f"/api/v1/api-keys/{key_id}/revoke").status_code == 200


def test_ip_ranges_are_exact_and_match_mapped_addresses(roster):
    owner = roster[("ours", "owner")]
    for bad in ("203.0.113.7/8", "0.0.0.0/0", "::/0"):
        response = create(owner, allowed_ips=[bad])
        assert response.status_code == 400, bad
        assert response.json()["code"] == "invalid_ip_range"
    mapped = create(owner, allowed_ips=["::ffff:127.0.0.0/104"]).json()
    assert mapped["allowed_ips"] == ["127.0.0.0/8"]
    client = key_client(mapped["secret"])
    assert client.get(ORDERS, REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200
    assert client.get(ORDERS, REMOTE_ADDR="::ffff:10.0.0.1").status_code == 403
