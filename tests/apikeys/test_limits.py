"""Per-key rate limits: RateLimit-* headers on every key-authenticated answer, 429 past it."""

import time

import pytest
from django.test import override_settings

from apikeys import usage
from tests.factories import api_client, key_client, make_api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_window(monkeypatch):
    """Every request of the test in the same one-minute window."""
    fixed = float(int(time.time()) // 60 * 60 + 10)
    monkeypatch.setattr(usage, "_now", lambda: fixed)
    return fixed


def test_headers_count_down_and_429_past_the_limit(roster, one_window):
    owner = roster[("ours", "owner")]
    settings_response = api_client(owner).patch(
        "/api/v1/api-keys/settings", {"rate_limit_per_minute": 10}, content_type="application/json"
    )
    assert settings_response.status_code == 200, settings_response.content
    client = key_client(make_api_key(owner))
    remaining = []
    for _ in range(10):
        response = client.get("/api/v1/orders")
        assert response.status_code == 200
        assert response["RateLimit-Limit"] == "10"
        assert response["RateLimit-Reset"] == "50"
        remaining.append(int(response["RateLimit-Remaining"]))
    assert remaining == list(range(9, -1, -1))
    refused = client.get("/api/v1/orders")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "50"
    assert refused["RateLimit-Remaining"] == "0"
    assert refused.json()["code"] == "rate_limited"


def test_each_key_has_its_own_budget(roster, one_window):
    owner = roster[("ours", "owner")]
    with override_settings(API_KEY_RATE_LIMIT=3):
        first, second = make_api_key(owner), make_api_key(owner)
        for _ in range(3):
            assert key_client(first).get("/api/v1/orders").status_code == 200
        assert key_client(first).get("/api/v1/orders").status_code == 429
        assert key_client(second).get("/api/v1/orders").status_code == 200


def test_a_person_gets_no_key_headers(roster):
    response = api_client(roster[("ours", "owner")]).get("/api/v1/orders")
    assert response.status_code == 200
    assert "RateLimit-Limit" not in response


def test_the_settings_are_bounded(roster):
    client = api_client(roster[("ours", "owner")])
    for value in (0, 9, 10_001):
        response = client.patch(
            "/api/v1/api-keys/settings", {"rate_limit_per_minute": value},
            content_type="application/json",
        )  # fmt: skip
        assert response.status_code == 400
