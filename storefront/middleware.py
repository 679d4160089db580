"""Storefront hosts (``<slug>.<STOREFRONT_DOMAIN>``) get the storefront's URLs and nothing else.

The dashboard, the staff API and the admin never answer on a diner-facing host, and the
storefront never answers on the application's host: cookies, CSRF and CSP stay apart.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from nordkestrel.hosts import is_storefront_host

STOREFRONT_URLCONF = "storefront.urls"


class StorefrontHostMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # The raw header: get_host() validates ALLOWED_HOSTS and would raise here.
        host = request.META.get("HTTP_HOST", "")
        if host and is_storefront_host(host):
            request.urlconf = STOREFRONT_URLCONF
        return self.get_response(request)
