"""Django's Redis cache, which survives Redis being down, with two round-trip savings on hot
paths (the rate limits).

When Redis is down or slower than ``REDIS_TIMEOUT`` (the socket timeouts), reads miss and
writes are dropped: the cache only ever saves work, and every caller already reads through to
PostgreSQL on a miss (the storefront menu, host and organization lookups). The first failure
is logged and remembered for ``REDIS_RETRY_SECONDS`` (:class:`nordkestrel.outage.Breaker`,
one per Redis server and process), during which the cache does not even try, so a silent
Redis costs one timeout per process, not one per call. A cache configured with
``OPTIONS["strict"] = True`` (the rate-limit counters' alias) raises :class:`CacheUnavailable`
instead, and counters (``incr``, ``count``) always do: a count cannot be made up, so each
rate limit decides what an outage means for it (nordkestrel/ratelimit.py).

Django's ``RedisCacheClient`` builds a new ``redis.Redis`` client (with its table of response
callbacks) for every cache call, and its ``incr`` asks ``EXISTS`` before ``INCRBY``: two round
trips, racing each other. Here each cache keeps one client per connection pool (a
``redis.Redis`` is safe to share; its pool hands out connections), and ``incr`` is one atomic
script: increment if the key exists, otherwise the same ``ValueError`` Django raises.
django-ratelimit counts with ``add`` then ``incr``, so a counted request costs two round trips
instead of three; :meth:`RedisCache.count` does both in one, for nordkestrel.ratelimit.limit.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, TypeVar, cast

import redis
from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient

from nordkestrel.outage import Breaker

T = TypeVar("T")
# What Redis being down or too slow raises (refused, reset, timed out, still loading,
# read-only, out of memory).
OUTAGES = (
    redis.ConnectionError,
    redis.TimeoutError,
    # A replica promoted mid-failover, a server out of memory: down for our purposes.
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
)


class CacheUnavailable(Exception):
    """Redis did not answer (down, or slower than its socket timeout)."""


def _retry_seconds() -> float:
    return float(settings.REDIS_RETRY_SECONDS)


# One per Redis server in this process, shared by every cache alias and thread using it.
_breakers: dict[str, Breaker] = {}


def _breaker(servers: Iterable[str]) -> Breaker:
    name = ",".join(servers)
    breaker = _breakers.get(name)
    if breaker is None:
        breaker = _breakers.setdefault(name, Breaker("redis", _retry_seconds))
    return breaker


# KEYS[1]: the key; ARGV[1]: the delta. nil when the key does not exist.
INCR_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return false
"""


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._incr_existing: Any = None

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # Django's own helpers (not in its type stubs): the pool this call would use.
        base: Any = self
        index = base._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = base._client(
                connection_pool=base._get_connection_pool(write)
            )
        return client

    def incr(self, key: Any, delta: int) -> int:
        client = self.get_client(key, write=True)
        if self._incr_existing is None:
            # EVALSHA, falling back to EVAL once if the server has not seen the script.
            self._incr_existing = client.register_script(INCR_EXISTING)
        value = self._incr_existing(keys=[key], args=[delta], client=client)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return int(value)

    def count(
        self, key: Any, timeout: float | None, mark: tuple[Any, str, str] | None = None
    ) -> int:
        """Create ``key`` at 0 expiring in ``timeout`` seconds unless it exists, then add one:
        a fixed-window counter, in one round trip (both commands pipelined). ``mark``
        (hash, field, value) is written in the same round trip (e.g. when a key was used)."""
        pipeline = self.get_client(key, write=True).pipeline(transaction=False)
        pipeline.set(key, 0, ex=None if timeout is None else int(timeout), nx=True)
        pipeline.incr(key)
        if mark is not None:
            pipeline.hset(mark[0], mark[1], mark[2])
        return int(pipeline.execute()[1])

    def take_hash(self, key: Any) -> dict[str, str]:
        """Every field of the hash ``key``, which is removed in the same transaction."""
        pipeline = self.get_client(key, write=True).pipeline(transaction=True)
        pipeline.hgetall(key)
        pipeline.delete(key)
        fields = pipeline.execute()[0]
        return {name.decode(): value.decode() for name, value in fields.items()}


class RedisCache(DjangoRedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS", {}))
        self.strict = bool(options.pop("strict", False))
        super().__init__(server, {**params, "OPTIONS": options})
        self._class = RedisCacheClient
        servers: list[str] = getattr(self, "_servers")  # noqa: B009 (not in Django's stubs)
        self.breaker = _breaker(servers)

    def _call(self, call: Callable[[], T], fallback: T, *, counter: bool = False) -> T:
        """``call()``, or when Redis is down ``fallback`` (CacheUnavailable for counters and
        a strict cache)."""
        fail = counter or self.strict
        if self.breaker.open:
            if fail:
                raise CacheUnavailable("Redis is unavailable (failing at once for a while)")
            return fallback
        try:
            result = call()
        except OUTAGES as error:
            self.breaker.trip(f"{type(error).__name__}: {error}")
            if fail:
                raise CacheUnavailable(str(error)) from error
            return fallback
        self.breaker.reset()
        return result

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        return self._call(partial(super().add, key, value, timeout, version), False)

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        return self._call(partial(super().get, key, default, version), default)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> None:
        self._call(partial(super().set, key, value, timeout, version), None)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        return self._call(partial(super().touch, key, timeout, version), False)

    def delete(self, key: Any, version: Any = None) -> Any:
        return self._call(partial(super().delete, key, version), False)

    def get_many(self, keys: Any, version: Any = None) -> Any:
        return self._call(partial(super().get_many, keys, version), {})

    def has_key(self, key: Any, version: Any = None) -> Any:
        return self._call(partial(super().has_key, key, version), False)

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        return self._call(partial(super().set_many, data, timeout, version), list(data))

    def delete_many(self, keys: Any, version: Any = None) -> None:
        self._call(partial(super().delete_many, keys, version), None)

    def clear(self) -> None:
        self._call(super().clear, None)

    def incr(self, key: Any, delta: int = 1, version: Any = None) -> Any:
        return self._call(partial(super().incr, key, delta, version), 0, counter=True)

    def count(
        self,
        key: str,
        timeout: int,
        version: int | None = None,
        *,
        mark: tuple[str, str, str] | None = None,
    ) -> int:
        """One more use of the counter ``key`` (see :meth:`RedisCacheClient.count`), and
        ``mark`` (hash, field, value) set in the same round trip."""
        key = self.make_and_validate_key(key, version=version)
        client = cast(RedisCacheClient, self._cache)  # the class set in __init__
        if mark is not None:
            mark = (self.make_and_validate_key(mark[0], version=version), mark[1], mark[2])
        return self._call(
            lambda: client.count(key, self.get_backend_timeout(timeout), mark), 0, counter=True
        )

    def hash_values(
        self, key: str, fields: list[str], version: int | None = None
    ) -> list[str | None]:
        """The values of ``fields`` in the hash ``key`` (None where unset, or Redis down)."""
        key = self.make_and_validate_key(key, version=version)
        client = cast(RedisCacheClient, self._cache).get_client(key)

        def read() -> list[str | None]:
            values = client.hmget(key, fields) if fields else []
            return [None if value is None else value.decode() for value in values]

        return self._call(read, [None] * len(fields))

    def take_hash(self, key: str, version: int | None = None) -> dict[str, str]:
        """The hash ``key``'s fields, removing it (see :meth:`RedisCacheClient.take_hash`)."""
        key = self.make_and_validate_key(key, version=version)
        client = cast(RedisCacheClient, self._cache)
        return self._call(lambda: client.take_hash(key), {}, counter=True)

    def probe(self) -> None:
        """Write, read and delete a key in one round trip, even during a remembered outage
        (for /readyz); success ends the outage. Raises what Redis raised."""
        key = self.make_and_validate_key(f"readyz:{secrets.token_hex(8)}")
        value = secrets.token_hex(8).encode()
        pipeline = (
            cast(RedisCacheClient, self._cache)
            .get_client(key, write=True)
            .pipeline(transaction=False)
        )
        pipeline.set(key, value, ex=10)
        pipeline.get(key)
        pipeline.delete(key)
        try:
            _, read, _ = pipeline.execute()
        except OUTAGES as error:
            self.breaker.trip(f"{type(error).__name__}: {error}")
            raise
        if read != value:
            raise RuntimeError("the cache did not return what was written")
        self.breaker.reset()
