"""Redis down or silent, in one process: the cache misses and drops writes within its socket
timeout, remembers the outage so the next calls do not wait, and each rate limit does what
it declared (fail open with a warning, or 503 ``rate_limit_unavailable``)."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.cache import cache, caches
from django.test import override_settings

from nordkestrel.cache import CacheUnavailable
from nordkestrel.ratelimit import (
    OnOutage,
    RateLimitExceeded,
    RateLimitUnavailable,
    auth_failures,
    limit,
    rate_limit,
)
from tests.conftest import require_service
from tests.support.faultproxy import FaultProxy


@pytest.fixture
def redis_proxy():
    require_service("Redis (REDIS_URL)", bool(settings.REDIS_URL))
    target = urlsplit(settings.REDIS_URL)
    proxy = FaultProxy((target.hostname or "127.0.0.1", target.port or 6379)).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def through(redis_proxy):
    """Both cache aliases reach Redis through the proxy."""
    location = f"redis://127.0.0.1:{redis_proxy.port}{urlsplit(settings.REDIS_URL).path}"
    aliases = {alias: {**config, "LOCATION": location} for alias, config in settings.CACHES.items()}
    with override_settings(CACHES=aliases):
        yield redis_proxy


@pytest.mark.parametrize("fault", ["refusing", "silent"])
def test_the_cache_misses_and_drops_writes_within_its_timeout(through, fault):
    cache.set("kept", "value", 60)
    assert cache.get("kept") == "value"
    getattr(through, fault)()
    started = time.monotonic()
    assert cache.get("kept", "fallback") == "fallback"
    cache.set("kept", "other", 60)
    assert cache.add("new", 1) is False
    assert cache.get_or_set("computed", lambda: "fresh") == "fresh"
    assert cache.delete("kept") is False
    cache.clear()
    # One timeout at most, then the outage is remembered: nothing else waits.
    assert time.monotonic() - started < settings.REDIS_TIMEOUT * 2 + 1
    with pytest.raises(CacheUnavailable):
        caches[settings.RATELIMIT_USE_CACHE].get("counter")
    with pytest.raises(CacheUnavailable):
        cache.incr("counter")

    through.normal()
    caches["default"].breaker.reset()  # type: ignore[attr-defined]  # as the next try would
    assert cache.get("kept") == "value"  # nothing was written during the outage


def test_limits_fail_open_or_closed_as_declared(through, rf, caplog):
    request = rf.post("/checkout", REMOTE_ADDR="203.0.113.80")
    through.refusing()
    with caplog.at_level(logging.WARNING, logger="nordkestrel.ratelimit"):
        for _ in range(3):
            limit(request, group="checkout", rate="1/m", on_outage=OnOutage.ALLOW)
    warnings = [
        record.message for record in caplog.records if record.name == "nordkestrel.ratelimit"
    ]
    assert (
        warnings
        == ["Rate limit checkout not counted, request allowed: its counter is unavailable"] * 3
    )

    with pytest.raises(RateLimitUnavailable) as refused:
        limit(request, group="password", rate="10/m", on_outage=OnOutage.REFUSE)
    assert refused.value.retry_after >= 1

    # Refused sign-in tokens: counted when possible, never a reason to refuse sign-in.
    auth_failures.check(request)
    auth_failures.record(request)

    through.normal()
    caches[settings.RATELIMIT_USE_CACHE].breaker.reset()  # type: ignore[attr-defined]
    limit(request, group="checkout", rate="1/m", on_outage=OnOutage.ALLOW)  # counting again
    with pytest.raises(RateLimitExceeded):
        limit(request, group="checkout", rate="1/m", on_outage=OnOutage.ALLOW)


@rate_limit(key="ip", rate="5/m", method="POST", on_outage=OnOutage.REFUSE)
def _guarded(request):
    from django.http import HttpResponse

    return HttpResponse("ok")


def test_a_fail_closed_decorator_refuses(through, rf):
    through.refusing()
    with pytest.raises(RateLimitUnavailable):
        _guarded(rf.post("/x", REMOTE_ADDR="203.0.113.81"))


@pytest.mark.django_db
def test_the_admin_sign_in_is_a_503_while_its_counter_is_down(through, http):
    """Passwords can be guessed: no attempts are let through uncounted."""
    through.refusing()
    response = http.post("/admin/login/", {"username": "admin", "password": "guess"})
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert response["Content-Type"].startswith("text/html")
    through.normal()
    caches[settings.RATELIMIT_USE_CACHE].breaker.reset()  # type: ignore[attr-defined]
    assert http.post("/admin/login/", {"username": "admin", "password": "guess"}).status_code == 200


@pytest.mark.django_db
@pytest.mark.urls("tests.nordkestrel.urls")
def test_the_api_answers_rate_limit_unavailable_in_the_error_shape(through, http):
    through.refusing()
    response = http.post("/api/v1/test/limited")
    assert response.status_code == 503
    assert response.json() == {
        "type": "unavailable",
        "code": "rate_limit_unavailable",
        "detail": "This is unavailable for a moment. Please try again shortly.",
        "attr": None,
    }
    assert int(response["Retry-After"]) >= 1


@pytest.mark.django_db
def test_readyz_names_a_silent_cache_within_its_bound(through, http):
    through.silent()
    started = time.monotonic()
    response = http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "cache": "unavailable"}
    assert time.monotonic() - started < 3
