"""Rate limits that answer 429 with ``Retry-After``, and decide what a Redis outage means.

django-ratelimit counts in the shared cache (Redis in production, so every process shares one
count). Its own exception carries no timing; :func:`rate_limit` asks it for the usage and
raises :class:`RateLimitExceeded` with the seconds left in the window.

When Redis is down the counters cannot count (nordkestrel/cache.py raises
``CacheUnavailable``), and every limit says what that means for it, ``on_outage``:

- :attr:`OnOutage.ALLOW` (fail open): the request goes on uncounted and a warning names the
  limit. For limits whose refusal would cost more than a few minutes without them: diners'
  checkouts and promotion codes (every order is still priced and checked on the server, and
  a code's caps are counted in PostgreSQL), staff actions (the actor is known and audited),
  refused sign-in tokens (signed tokens cannot be guessed; refusing would sign every operator
  out).
- :attr:`OnOutage.REFUSE` (fail closed): 503 ``rate_limit_unavailable`` with ``Retry-After``.
  For limits that stand between an attacker and a guessable secret: the admin's password
  sign-in.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest
from django_ratelimit import ALL, UNSAFE
from django_ratelimit import core as ratelimit_core
from django_ratelimit.core import get_usage
from django_ratelimit.exceptions import Ratelimited

from nordkestrel.cache import CacheUnavailable, RedisCache
from nordkestrel.outage import ServiceUnavailable

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 60

View = TypeVar("View", bound=Callable[..., Any])
Key = str | Callable[[str, HttpRequest], str]


class OnOutage(enum.Enum):
    """What a limit does when its counter store (Redis) is down."""

    ALLOW = "allow"  # fail open, with a warning
    REFUSE = "refuse"  # fail closed: 503 rate_limit_unavailable


class RateLimitExceeded(Ratelimited):
    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many requests.")
        self.retry_after = max(1, int(retry_after))


class RateLimitUnavailable(ServiceUnavailable):
    code = "rate_limit_unavailable"


def retry_after(exception: Exception) -> int:
    return getattr(exception, "retry_after", DEFAULT_RETRY_AFTER)


def _counter_down(group: str | None, on_outage: OnOutage, error: CacheUnavailable) -> None:
    """Apply ``on_outage`` for ``group`` while its counter cannot count."""
    if on_outage is OnOutage.REFUSE:
        logger.warning("Rate limit %s refused a request: its counter is unavailable", group)
        raise RateLimitUnavailable(
            "This is unavailable for a moment. Please try again shortly.",
            retry_after=int(settings.REDIS_RETRY_SECONDS) or 1,
        ) from error
    logger.warning("Rate limit %s not counted, request allowed: its counter is unavailable", group)


def rate_limit(
    *, key: str, rate: str, on_outage: OnOutage, group: str | None = None, method: Any = UNSAFE
) -> Callable[[View], View]:
    """Limit a view to ``rate`` requests per ``key`` (e.g. ``"ip"``, ``"10/m"``)."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            try:
                usage = get_usage(
                    request, group=group, fn=view, key=key, rate=rate, method=method, increment=True
                )
            except CacheUnavailable as error:
                _counter_down(group or view.__qualname__, on_outage, error)
                usage = None
            if usage is not None and usage["should_limit"]:
                raise RateLimitExceeded(retry_after=usage["time_left"])
            return view(request, *args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def limit(
    request: HttpRequest | None,
    *,
    group: str,
    rate: str,
    on_outage: OnOutage,
    key: Key = "ip",
) -> None:
    """Count one use of ``group`` for this client (``key``: ``"ip"`` or a function of the
    group and the request); past ``rate``, raise 429. For limits that apply to part of a view
    only (e.g. a checkout that carries a promotion code), or to no request at all."""
    counter = caches[settings.RATELIMIT_USE_CACHE]
    try:
        if request is not None and isinstance(counter, RedisCache) and _simple(key):
            usage = _count(counter, request, group=group, rate=rate, key=str(key))
        else:
            usage = get_usage(request, group=group, key=key, rate=rate, increment=True)
    except CacheUnavailable as error:
        _counter_down(group, on_outage, error)
        return
    if usage is not None and usage["should_limit"]:
        raise RateLimitExceeded(retry_after=usage["time_left"])


def _simple(key: Key) -> bool:
    return isinstance(key, str) and key in ratelimit_core._SIMPLE_KEYS


def _count(
    counter: RedisCache, request: HttpRequest, *, group: str, rate: str, key: str
) -> dict[str, Any] | None:
    """``get_usage(..., increment=True)`` in one Redis round trip instead of two: the same
    window, cache key and answer, from django-ratelimit's own helpers (4.1, pinned), with the
    counter's add-then-increment pipelined (tests/nordkestrel/test_cache.py checks that both
    count the same uses)."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return None
    allowed, period = ratelimit_core._split_rate(rate)
    value = ratelimit_core._SIMPLE_KEYS[key](request)
    window = ratelimit_core._get_window(value, period)
    cache_key = ratelimit_core._make_cache_key(group, window, rate, value, ALL)
    count = counter.count(cache_key, period + ratelimit_core.EXPIRATION_FUDGE)
    return {
        "count": count,
        "limit": allowed,
        "should_limit": count > allowed,
        "time_left": window - int(ratelimit_core.time.time()),
    }


class FailureLimit:
    """Counts failures (e.g. refused sign-ins) per client IP; past ``rate``, answers 429.

    ``check`` runs before the work and ``record`` after a failure, so successes cost no
    write. A cache outage fails open here (see the module's docstring): it must not take
    sign-in down with it.
    """

    on_outage = OnOutage.ALLOW

    def __init__(self, group: str, rate: Callable[[], str]) -> None:
        self.group = group
        self.rate = rate

    def _usage(self, request: HttpRequest, *, increment: bool) -> dict[str, Any] | None:
        try:
            return get_usage(
                request, group=self.group, key="ip", rate=self.rate(), increment=increment
            )
        except CacheUnavailable as error:
            _counter_down(self.group, self.on_outage, error)
            return None

    def check(self, request: HttpRequest) -> None:
        usage = self._peek(request)
        if usage is not None and usage["count"] >= usage["limit"] > 0:
            raise RateLimitExceeded(retry_after=usage["time_left"])

    def _peek(self, request: HttpRequest) -> dict[str, Any] | None:
        """The failures counted so far, without counting: one read of the counter (where
        django-ratelimit's ``get_usage`` would first create it, then read it: two round trips
        and a write on every authenticated request)."""
        counter = caches[settings.RATELIMIT_USE_CACHE]
        if not (isinstance(counter, RedisCache) and getattr(settings, "RATELIMIT_ENABLE", True)):
            return self._usage(request, increment=False)
        allowed, period = ratelimit_core._split_rate(self.rate())
        value = ratelimit_core._SIMPLE_KEYS["ip"](request)
        window = ratelimit_core._get_window(value, period)
        cache_key = ratelimit_core._make_cache_key(self.group, window, self.rate(), value, ALL)
        try:
            count = counter.get(cache_key)
        except CacheUnavailable as error:
            _counter_down(self.group, self.on_outage, error)
            return None
        return {
            "count": int(count or 0),
            "limit": allowed,
            "time_left": window - int(ratelimit_core.time.time()),
        }

    def record(self, request: HttpRequest) -> None:
        self._usage(request, increment=True)


def _auth_failure_rate() -> str:
    return str(settings.AUTH_FAILURE_RATE)


# Refused tokens and sessions, shared by the API and the dashboard.
auth_failures = FailureLimit("auth-failure", _auth_failure_rate)
