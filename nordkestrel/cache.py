"""Django's Redis cache with two round-trip savings on hot paths (the rate limits).

Django's ``RedisCacheClient`` builds a new ``redis.Redis`` client (with its table of response
callbacks) for every cache call, and its ``incr`` asks ``EXISTS`` before ``INCRBY``: two round
trips, racing each other. Here each cache keeps one client per connection pool (a
``redis.Redis`` is safe to share; its pool hands out connections), and ``incr`` is one atomic
script: increment if the key exists, otherwise the same ``ValueError`` Django raises.
django-ratelimit counts with ``add`` then ``incr``, so a counted request costs two round trips
instead of three; :meth:`RedisCache.count` does both in one, for nordkestrel.ratelimit.limit.
"""

from __future__ import annotations

from typing import Any, cast

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient

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

    def count(self, key: Any, timeout: float | None) -> int:
        """Create ``key`` at 0 expiring in ``timeout`` seconds unless it exists, then add one:
        a fixed-window counter, in one round trip (both commands pipelined)."""
        pipeline = self.get_client(key, write=True).pipeline(transaction=False)
        pipeline.set(key, 0, ex=None if timeout is None else int(timeout), nx=True)
        pipeline.incr(key)
        return int(pipeline.execute()[1])


class RedisCache(DjangoRedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient

    def count(self, key: str, timeout: int, version: int | None = None) -> int:
        """One more use of the counter ``key`` (see :meth:`RedisCacheClient.count`)."""
        key = self.make_and_validate_key(key, version=version)
        client = cast(RedisCacheClient, self._cache)  # the class set in __init__
        return client.count(key, self.get_backend_timeout(timeout))
