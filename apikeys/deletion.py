"""The account purge's API keys step: the key routes (a platform table, which the purge's
sweep of tenant tables does not reach) go before the keys themselves."""

from __future__ import annotations

from typing import Any

from apikeys.models import ApiKeyRoute
from restaurants.purge import register_step
from tenants.context import tenant_context
from tenants.models import Restaurant


@register_step("apikeys")
def forget_key_routes(restaurant: Restaurant) -> dict[str, Any]:
    with tenant_context(restaurant):
        deleted, _ = ApiKeyRoute.objects.filter(restaurant=restaurant).delete()
    return {"key_routes_deleted": deleted}
