"""The storefront API in the OpenAPI document (``/api/v1/schema/``).

The storefront's routes live in their own URL configuration, answered only on a storefront
host, so drf-spectacular's walk of the application's URLs does not see them. The generator
adds the ``/api/v1/storefront/`` routes of ``storefront.urls``; the postprocessing hook tags
them ``storefront`` and gives each of their operations a server entry naming the host they
answer on, ``<scheme>://<slug>.<STOREFRONT_DOMAIN>`` (or a restaurant's active custom domain).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.generators import SchemaGenerator

from storefront.middleware import STOREFRONT_URLCONF

STOREFRONT_API_PREFIX = "/api/v1/storefront/"
TAG = "storefront"
TAG_DESCRIPTION = (
    "The diners' API, public: it answers only on a restaurant's storefront host, which picks "
    "the restaurant (`<slug>.<STOREFRONT_DOMAIN>`, see the servers of these paths). No "
    "credentials are read; an order is addressed by its unguessable public id."
)


class ApiSchemaGenerator(SchemaGenerator):
    """The staff API from the application's URLs, plus the storefront API."""

    def _initialise_endpoints(self) -> None:
        if self.endpoints is not None:
            return
        super()._initialise_endpoints()
        storefront = self.endpoint_inspector_cls(None, STOREFRONT_URLCONF).get_api_endpoints()
        self.endpoints = [
            *(self.endpoints or []),
            *(e for e in storefront if e[0].startswith(STOREFRONT_API_PREFIX)),
        ]


def storefront_server() -> dict[str, Any]:
    port = f":{settings.STOREFRONT_PORT}" if settings.STOREFRONT_PORT else ""
    return {
        "url": "{scheme}://{restaurant}.{storefront_domain}",
        "description": "A restaurant's storefront host.",
        "variables": {
            "scheme": {"default": settings.STOREFRONT_SCHEME, "enum": ["https", "http"]},
            "restaurant": {"default": "your-restaurant", "description": "The restaurant's slug."},
            "storefront_domain": {
                "default": f"{settings.STOREFRONT_DOMAIN}{port}",
                "description": "This deployment's STOREFRONT_DOMAIN (and port).",
            },
        },
    }


def tag_storefront_paths(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the storefront's tag and host."""
    storefront = [
        path for path in result.get("paths", {}) if path.startswith(STOREFRONT_API_PREFIX)
    ]
    for path in storefront:
        for operation in result["paths"][path].values():
            operation["tags"] = [TAG]
            operation["servers"] = [storefront_server()]
            # No credentials at all (drf-spectacular's ``[{}]`` reads as "optional" to client
            # generators, which then ask for an authenticated client).
            operation["security"] = []
    if storefront:
        tags = [tag for tag in result.get("tags", []) if tag.get("name") != TAG]
        result["tags"] = [*tags, {"name": TAG, "description": TAG_DESCRIPTION}]
    return result
