from __future__ import annotations

import time

from django.core.cache import cache

from nordkestrel.hosts import storefront_host, storefront_slug
from tenants.models import Restaurant

ORG_CACHE_SECONDS = 300


def _org_cache_key(organization_id: str) -> str:
    return f"tenants:org:{organization_id}"


def restaurant_id_for_organization(organization_id: str) -> int | None:
    """The restaurant a Clerk organization stands for: one cached lookup."""
    key = _org_cache_key(organization_id)
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    restaurant_id = (
        Restaurant.objects.filter(clerk_organization_id=organization_id)
        .values_list("pk", flat=True)
        .first()
    )
    cache.set(key, restaurant_id or 0, ORG_CACHE_SECONDS)
    return restaurant_id


def forget_organization(organization_id: str | None) -> None:
    if organization_id:
        cache.delete(_org_cache_key(organization_id))


# Each process keeps known hosts a few seconds in front of the shared cache, so the
# storefront's hot read makes no cache round trip for its host.
HOST_MEMO_SECONDS = 5.0
HOST_MEMO_MAX = 10_000
_host_memo: dict[str, tuple[int, float]] = {}


def _host_cache_key(host: str) -> str:
    return f"tenants:host:{host}"


def forget_storefront_host(slug: str) -> None:
    """After a status or slug change, the storefront host answers anew at once."""
    host = storefront_host(slug)
    cache.delete(_host_cache_key(host))
    _host_memo.pop(host, None)


def active_restaurant_for_host(host: str) -> Restaurant | None:
    """The restaurant a storefront request is for, re-checked as active (the host memo may
    still hold a restaurant that closed a moment ago). One query on top of the cached lookup."""
    restaurant_id = restaurant_id_for_host(host)
    if not restaurant_id:
        return None
    try:  # get(), not first(): no ORDER BY on a lookup by primary key
        return Restaurant.objects.get(pk=restaurant_id, status=Restaurant.Status.ACTIVE)
    except Restaurant.DoesNotExist:
        return None


def restaurant_id_for_host(host: str) -> int | None:
    """The restaurant a storefront host name stands for (``<slug>.<STOREFRONT_DOMAIN>``).

    One cached lookup; unknown hosts are cached too, so probing costs no queries. Suspended
    restaurants and those pending deletion do not answer.
    """
    slug = storefront_slug(host)
    if slug is None:
        return None
    host = storefront_host(slug)
    clock = time.monotonic()
    memo = _host_memo.get(host)
    if memo is not None and clock < memo[1]:
        return memo[0]
    key = _host_cache_key(host)
    restaurant_id = cache.get(key)
    if restaurant_id is None:
        restaurant_id = (
            Restaurant.objects.filter(slug=slug, status=Restaurant.Status.ACTIVE)
            .values_list("pk", flat=True)
            .first()
        ) or 0
        cache.set(key, restaurant_id, ORG_CACHE_SECONDS)
    if restaurant_id:  # unknown hosts stay in the shared cache only, so the memo stays small
        if len(_host_memo) >= HOST_MEMO_MAX:
            _host_memo.clear()
        _host_memo[host] = (restaurant_id, clock + HOST_MEMO_SECONDS)
    return restaurant_id or None
