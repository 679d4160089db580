"""The project's Redis cache: Django's, with one client per pool and a one-round-trip incr."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import caches

from nordkestrel.cache import RedisCache
from tests.conftest import require_service


@pytest.fixture
def redis_cache():
    require_service("Redis (REDIS_URL)", bool(settings.REDIS_URL))
    default = caches["default"]
    assert isinstance(default, RedisCache)
    return default


def test_incr_counts_an_existing_key(redis_cache):
    redis_cache.set("counter", 5, 60)
    assert redis_cache.incr("counter") == 6
    assert redis_cache.incr("counter", 10) == 16
    assert redis_cache.get("counter") == 16


def test_incr_of_a_missing_key_is_refused_and_creates_nothing(redis_cache):
    with pytest.raises(ValueError, match="not found"):
        redis_cache.incr("missing")
    assert redis_cache.get("missing") is None
    assert redis_cache.has_key("missing") is False


def test_incr_keeps_the_keys_expiry(redis_cache):
    redis_cache.add("window", 0, 30)
    redis_cache.incr("window")
    client = redis_cache._cache.get_client(write=True)
    ttl = client.ttl(redis_cache.make_key("window"))
    assert 0 < ttl <= 30


def test_one_client_serves_every_call(redis_cache):
    clients = {id(redis_cache._cache.get_client(write=True)) for _ in range(3)}
    clients.add(id(redis_cache._cache.get_client()))
    assert len(clients) == 1


def test_a_rate_limit_counts_in_two_round_trips(redis_cache, rf):
    """django-ratelimit's add-then-incr: SET NX, then the script (no EXISTS before INCRBY)."""
    from django_ratelimit.core import get_usage

    client = redis_cache._cache.get_client(write=True)
    request = rf.post("/checkout", REMOTE_ADDR="203.0.113.9")
    get_usage(request, group="round-trips", key="ip", rate="10/m", increment=True)
    sent: list[tuple] = []
    original = client.execute_command

    def counting(*args, **options):
        sent.append(args)
        return original(*args, **options)

    client.execute_command = counting
    try:
        usage = get_usage(request, group="round-trips", key="ip", rate="10/m", increment=True)
    finally:
        del client.execute_command
    assert usage["count"] == 2
    assert [args[0] for args in sent] == ["SET", "EVALSHA"]
