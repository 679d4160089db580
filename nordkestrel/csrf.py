"""CSRF protection bound to the request's own origin, not only to a cookie.

Django's check compares the form's token with the ``csrftoken`` cookie. A cookie is not bound
to its host, though: a sibling subdomain (any storefront, ``<slug>.<STOREFRONT_DOMAIN>``) can
set one for the parent domain, put the same value in a form, and post it to the dashboard.
Django only looks at ``Referer`` when the request came over HTTPS and no ``Origin`` was sent,
so such a post without ``Origin`` got through on plain HTTP.

:class:`HostBoundCsrfViewMiddleware` therefore asks every unsafe request that is CSRF-checked
(every view not marked ``csrf_exempt``: DRF's API views and the Stripe webhooks are) for the
origin it came from, on HTTP as on HTTPS:

* ``Origin``, or failing that the scheme and host of ``Referer``, must be the request's own
  origin (``scheme://Host``) or one of ``CSRF_TRUSTED_ORIGINS``; with neither header, 403;
* a storefront host other than the request's own is refused even when a wildcard in
  ``CSRF_TRUSTED_ORIGINS`` would cover it, so storefronts never post to the dashboard or to
  each other; a storefront's own forms post to its own host and pass.

Then Django's own checks run unchanged (the token against the cookie, ``Referer`` on HTTPS).
Refusals go through Django's ``_reject``, so they answer with ``CSRF_FAILURE_VIEW`` like any
other CSRF failure. In production the cookie is also ``__Host-`` prefixed (settings.py), so a
sibling subdomain cannot set it in the first place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseForbidden
from django.http.request import split_domain_port
from django.middleware.csrf import (
    REASON_BAD_ORIGIN,
    REASON_BAD_REFERER,
    REASON_MALFORMED_REFERER,
    CsrfViewMiddleware,
)
from django.utils.http import is_same_domain

from nordkestrel.hosts import is_storefront_host

REASON_NO_ORIGIN = "Origin checking failed - no Origin or Referer."
MIDDLEWARE_PATH = "nordkestrel.csrf.HostBoundCsrfViewMiddleware"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def referer_origin(referer: str) -> str | None:
    """``scheme://netloc`` of a ``Referer``, or None when it is not an absolute URL."""
    try:
        parts = urlsplit(referer)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


class HostBoundCsrfViewMiddleware(CsrfViewMiddleware):
    """Django's CSRF middleware, plus: an unsafe request names an origin this host trusts."""

    def process_view(
        self,
        request: HttpRequest,
        callback: Callable[..., Any],
        callback_args: Any,
        callback_kwargs: Any,
    ) -> HttpResponseForbidden | None:
        if not self._exempt(request, callback):
            origin = request.META.get("HTTP_ORIGIN")
            if origin is not None:
                if not self._origin_allowed(request, origin):
                    return self._refuse(request, REASON_BAD_ORIGIN % origin)
            else:
                referer = request.META.get("HTTP_REFERER")
                if not referer:
                    return self._refuse(request, REASON_NO_ORIGIN)
                from_referer = referer_origin(referer)
                if from_referer is None:
                    return self._refuse(request, REASON_MALFORMED_REFERER)
                if not self._origin_allowed(request, from_referer):
                    return self._refuse(request, REASON_BAD_REFERER % referer)
        return super().process_view(request, callback, callback_args, callback_kwargs)

    def _refuse(self, request: HttpRequest, reason: str) -> HttpResponseForbidden:
        """Django's own refusal: logged, and answered by ``CSRF_FAILURE_VIEW``."""
        response: HttpResponseForbidden = self._reject(request, reason)  # type: ignore[attr-defined]
        return response

    @staticmethod
    def _exempt(request: HttpRequest, callback: Callable[..., Any]) -> bool:
        """Whatever Django's own process_view lets through before it checks anything."""
        return (
            getattr(request, "csrf_processing_done", False)
            or getattr(callback, "csrf_exempt", False)
            or request.method in SAFE_METHODS
            or getattr(request, "_dont_enforce_csrf_checks", False)
        )

    def _origin_allowed(self, request: HttpRequest, origin: str) -> bool:
        """The request's own origin, or a trusted origin that is not another storefront."""
        try:
            host = request.get_host()
        except DisallowedHost:
            host = None
        if host is not None:
            scheme = "https" if request.is_secure() else "http"
            if origin == f"{scheme}://{host}":
                return True
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        if not parts.scheme or not parts.netloc or parts.path or parts.query or parts.fragment:
            return False
        name, _port = split_domain_port(parts.netloc)
        if not name or is_storefront_host(parts.netloc):
            # A storefront posts to its own host only (matched above), never here.
            return False
        if origin in self.allowed_origins_exact:
            return True
        return any(
            is_same_domain(parts.netloc, allowed)
            for allowed in self.allowed_origin_subdomains.get(parts.scheme, ())
        )


@register(Tags.security)
def check_csrf_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Django's security.W003 looks for its own class by name (silenced in settings.py); this
    check asks for ours instead, in every environment."""
    if MIDDLEWARE_PATH in settings.MIDDLEWARE:
        return []
    return [
        Error(
            f"{MIDDLEWARE_PATH} is not in MIDDLEWARE: forms would be checked against a cookie "
            "a sibling subdomain can set.",
            hint="Put it where Django's CsrfViewMiddleware would go.",
            id="nordkestrel.E001",
        )
    ]
