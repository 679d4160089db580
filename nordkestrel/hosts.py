"""Storefront host names: ``<slug>.<STOREFRONT_DOMAIN>``, built and parsed here only.

The storefront's middleware, the host lookup, order emails and the schema's server all use
these, so the rule for what a storefront host is lives in one place.
"""

from __future__ import annotations

from django.conf import settings
from django.http.request import split_domain_port


def storefront_host(slug: str) -> str:
    """The host name (no port) a restaurant's storefront answers on."""
    return f"{slug}.{settings.STOREFRONT_DOMAIN}"


def storefront_origin(slug: str) -> str:
    """``scheme://host[:port]`` of a restaurant's storefront, for links in emails."""
    port = f":{settings.STOREFRONT_PORT}" if settings.STOREFRONT_PORT else ""
    return f"{settings.STOREFRONT_SCHEME}://{storefront_host(slug)}{port}"


def storefront_slug(host: str) -> str | None:
    """The slug a ``Host`` header names, or None when it is no storefront host.

    The port is ignored, and so is one trailing dot; the bare storefront domain and deeper
    names (``a.b.<domain>``) are not storefront hosts.
    """
    name, _port = split_domain_port(host)
    name = name.rstrip(".")
    suffix = "." + settings.STOREFRONT_DOMAIN
    if not name.endswith(suffix):
        return None
    slug = name[: -len(suffix)]
    if not slug or "." in slug:
        return None
    return slug


def is_storefront_host(host: str) -> bool:
    return storefront_slug(host) is not None
