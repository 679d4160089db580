"""Per-key rate limits and the last-used marks, in one Redis round trip per request.

Each key-authenticated request counts one use in a fixed one-minute window
(``apikeys:rate:<key>:<window start>``) and, in the same pipeline, records when and from
where the key was used in one Redis hash (``apikeys:used``, field ``<restaurant>:<key>``).
The database is not written on the request path: the periodic job ``api-key-usage`` moves the
marks into ``last_used_at`` (so the row is written at most once per run, never once per
call), and the key list reads the marks not yet moved. When Redis is down the limit fails
open (a key is a known, audited actor; see nordkestrel/ratelimit.py) and no mark is kept.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import caches

from nordkestrel.cache import CacheUnavailable, RedisCache

logger = logging.getLogger(__name__)

WINDOW = 60
USAGE_HASH = "apikeys:used"


@dataclass(frozen=True)
class Quota:
    """What the ``RateLimit-*`` headers say: the limit, what is left, seconds to the reset."""

    limit: int
    remaining: int
    reset: int
    exceeded: bool

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


def _now() -> float:
    """The clock the windows follow (a function, so a test can hold one window)."""
    return time.time()


def _counter() -> object:
    return caches[settings.RATELIMIT_USE_CACHE]


def _field(restaurant_id: int, key_id: int) -> str:
    return f"{restaurant_id}:{key_id}"


def count_use(key_id: int, restaurant_id: int, limit: int, ip: str) -> Quota | None:
    """Count one use of the key and mark it used; None when the counter is unavailable."""
    now = _now()
    start = int(now) - int(now) % WINDOW
    counter_key = f"apikeys:rate:{key_id}:{start}"
    mark = f"{int(now)} {ip}"
    counter = _counter()
    try:
        if isinstance(counter, RedisCache):
            count = counter.count(
                counter_key, WINDOW + 5, mark=(USAGE_HASH, _field(restaurant_id, key_id), mark)
            )
        else:  # the development cache without Redis: the same counts, not in one round trip
            counter.add(counter_key, 0, WINDOW + 5)  # type: ignore[attr-defined]
            count = counter.incr(counter_key)  # type: ignore[attr-defined]
            marks = counter.get(USAGE_HASH) or {}  # type: ignore[attr-defined]
            marks[_field(restaurant_id, key_id)] = mark
            counter.set(USAGE_HASH, marks, None)  # type: ignore[attr-defined]
    except CacheUnavailable:
        logger.warning("API key rate limit not counted, request allowed: Redis is unavailable")
        return None
    reset = max(1, start + WINDOW - int(now))
    return Quota(limit=limit, remaining=max(0, limit - count), reset=reset, exceeded=count > limit)


@dataclass(frozen=True)
class Use:
    at: datetime
    ip: str | None


def _parse(value: str | None) -> Use | None:
    if not value:
        return None
    stamp, _, ip = value.partition(" ")
    try:
        return Use(datetime.fromtimestamp(int(stamp), tz=UTC), ip or None)
    except ValueError:
        return None


def pending_uses(restaurant_id: int, key_ids: list[int]) -> dict[int, Use]:
    """The marks of these keys not yet moved into the database."""
    counter = _counter()
    fields = [_field(restaurant_id, key_id) for key_id in key_ids]
    if isinstance(counter, RedisCache):
        values = counter.hash_values(USAGE_HASH, fields)
    else:
        marks = counter.get(USAGE_HASH) or {}  # type: ignore[attr-defined]
        values = [marks.get(field) for field in fields]
    uses = {key_id: _parse(value) for key_id, value in zip(key_ids, values, strict=True)}
    return {key_id: use for key_id, use in uses.items() if use is not None}


def take_uses() -> dict[int, dict[int, Use]]:
    """Every mark, removed from Redis: restaurant id → key id → last use."""
    counter = _counter()
    if isinstance(counter, RedisCache):
        marks = counter.take_hash(USAGE_HASH)
    else:
        marks = counter.get(USAGE_HASH) or {}  # type: ignore[attr-defined]
        counter.delete(USAGE_HASH)  # type: ignore[attr-defined]
    taken: dict[int, dict[int, Use]] = {}
    for field, value in marks.items():
        restaurant, _, key = field.partition(":")
        use = _parse(value)
        if use is None or not (restaurant.isdigit() and key.isdigit()):
            continue
        taken.setdefault(int(restaurant), {})[int(key)] = use
    return taken
