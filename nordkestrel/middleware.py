"""Request-wide middleware: client IP, request id and the request log line, 429 and 503
answers."""

from __future__ import annotations

import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_ratelimit.exceptions import Ratelimited

from nordkestrel.context import RequestMeta, request_meta_var
from nordkestrel.errors import error_response
from nordkestrel.outage import unavailable_response
from nordkestrel.ratelimit import retry_after

request_logger = logging.getLogger("nordkestrel.request")
logger = logging.getLogger(__name__)

# An upstream request id is kept only from a trusted proxy and only in this shape.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def resolve_client_ip(peer: str, forwarded: str | None) -> tuple[str, bool]:
    """The client's address, and whether the peer is a trusted proxy.

    ``CF-Connecting-IP`` is believed only when the socket peer lies in
    ``TRUSTED_PROXY_NETWORKS``; from anyone else it is a spoofable header and is ignored.
    """
    peer_ip = _parse_ip(peer)
    trusted = peer_ip is not None and any(
        peer_ip in network for network in settings.TRUSTED_PROXY_NETWORKS
    )
    if trusted and forwarded:
        forwarded_ip = _parse_ip(forwarded)
        if forwarded_ip is not None:
            return str(forwarded_ip), True
    return (str(peer_ip) if peer_ip is not None else peer), trusted


def client_ip(request: HttpRequest) -> str:
    """The key function django-ratelimit uses for ``key="ip"``."""
    return getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR", "")


class ClientIPMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        ip, trusted = resolve_client_ip(
            request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_CF_CONNECTING_IP")
        )
        request.client_ip = ip  # type: ignore[attr-defined]
        request.from_trusted_proxy = trusted  # type: ignore[attr-defined]
        if not trusted:
            # Only our proxy may say the original request was HTTPS (SECURE_PROXY_SSL_HEADER).
            request.META.pop("HTTP_X_FORWARDED_PROTO", None)
        return self.get_response(request)


class RequestLogMiddleware:
    """Gives each request an id (echoed in ``X-Request-ID``) and logs one JSON line for it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        if getattr(request, "from_trusted_proxy", False) and REQUEST_ID_PATTERN.fullmatch(incoming):
            request_id = incoming
        else:
            request_id = uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_meta_var.set(
            RequestMeta(
                request_id=request_id,
                ip=getattr(request, "client_ip", None) or None,
                user_agent=request.headers.get("User-Agent", "")[:512],
            )
        )
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            restaurant = getattr(request, "restaurant", None)
            request_logger.log(
                logging.ERROR if response.status_code >= 500 else logging.INFO,
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client_ip": getattr(request, "client_ip", None),
                    "restaurant_id": getattr(restaurant, "pk", None),
                },
            )
            return response
        finally:
            request_meta_var.reset(token)


class RateLimitMiddleware:
    """Turns django-ratelimit's exception, raised anywhere in a view, into a 429."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, Ratelimited):
            return None
        return error_response(
            request,
            429,
            "rate_limited",
            "Too many requests. Try again later.",
            headers={"Retry-After": str(retry_after(exception))},
        )


class ServiceUnavailableMiddleware:
    """A database that is down or too slow, or another dependency a view needs, raised in a
    view or while rendering its page: 503 with ``Retry-After``, in the error shape on the API
    and as a short page elsewhere (nordkestrel/outage.py). Raised in middleware instead,
    the 500 handler answers the same (nordkestrel.views.server_error)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return unavailable_response(request, exception)
