"""The project's Redis cache: Django's, with one client per pool and a one-round-trip incr."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import caches

from nordkestrel.cache import RedisCache
from tests.conftest import require_service


@pytest.fixture
def redis_cache():
    """The rate-limit counters' cache (the same Redis as the default cache)."""
    require_service("Redis (REDIS_URL)", bool(settings.REDIS_URL))
    counters = caches[settings.RATELIMIT_USE_CACHE]
    assert isinstance(counters, RedisCache)
    assert isinstance(caches["default"], RedisCache)
    return counters


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


def test_limit_counts_what_django_ratelimit_counts_in_one_round_trip(
    redis_cache, rf, frozen_ratelimit_clock, monkeypatch
):
    """nordkestrel.ratelimit.limit pipelines django-ratelimit's add-then-increment: the same
    key, window and verdict as get_usage, one round trip."""
    from django_ratelimit.core import get_usage

    from nordkestrel.ratelimit import OnOutage, RateLimitExceeded, limit

    request = rf.post("/checkout", REMOTE_ADDR="203.0.113.10")

    def usage() -> int:
        return get_usage(request, group="shared", key="ip", rate="4/m")["count"]

    client = redis_cache._cache.get_client(write=True)
    sent: list[tuple] = []
    executed: list[int] = []
    original_command, original_pipeline = client.execute_command, client.pipeline

    def pipeline(*args, **kwargs):
        made = original_pipeline(*args, **kwargs)
        execute = made.execute

        def counted_execute(*a, **k):
            executed.append(len(made.command_stack))
            return execute(*a, **k)

        made.execute = counted_execute
        return made

    monkeypatch.setattr(client, "pipeline", pipeline)

    def command(*args, **kwargs):
        sent.append(args)
        return original_command(*args, **kwargs)

    monkeypatch.setattr(client, "execute_command", command)
    limit(request, group="shared", rate="4/m", on_outage=OnOutage.REFUSE)
    assert (executed, sent) == ([2], []), "SET NX and INCR in one pipeline, nothing else"
    monkeypatch.undo()

    assert usage() == 1
    get_usage(request, group="shared", key="ip", rate="4/m", increment=True)
    assert usage() == 2
    limit(request, group="shared", rate="4/m", on_outage=OnOutage.REFUSE)
    limit(request, group="shared", rate="4/m", on_outage=OnOutage.REFUSE)
    assert usage() == 4
    with pytest.raises(RateLimitExceeded) as refused:
        limit(request, group="shared", rate="4/m", on_outage=OnOutage.REFUSE)
    assert 1 <= refused.value.retry_after <= 60
    other = rf.post("/checkout", REMOTE_ADDR="203.0.113.11")
    limit(
        other, group="shared", rate="4/m", on_outage=OnOutage.REFUSE
    )  # another client has its own count


def test_limit_honours_the_switch(redis_cache, rf, settings):
    from nordkestrel.ratelimit import OnOutage, limit

    settings.RATELIMIT_ENABLE = False
    request = rf.post("/checkout", REMOTE_ADDR="203.0.113.12")
    for _ in range(5):
        limit(request, group="off", rate="1/m", on_outage=OnOutage.REFUSE)
