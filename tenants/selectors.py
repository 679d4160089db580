from __future__ import annotations

from django.core.cache import cache

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
