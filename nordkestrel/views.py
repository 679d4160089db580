"""Platform endpoints: health probes, security.txt, and the error pages."""

from __future__ import annotations

import logging
import secrets
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from nordkestrel.cache import OUTAGES as redis_outages
from nordkestrel.cache import RedisCache
from nordkestrel.dbgrants import UNSAFE_ROLE_SQL
from nordkestrel.errors import error_response
from nordkestrel.outage import is_database_outage, unavailable_response

logger = logging.getLogger(__name__)


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and answering; nothing else is checked."""
    return JsonResponse({"status": "ok"})


class UnsafeDatabaseRole(RuntimeError):
    """Connected as a role that could lower row-level security: tenant isolation is off."""


# /readyz answers within about 3 s whatever is down: the database gets a connection of its
# own for at most this long (libpq's shortest connection timeout is 2 s), the cache one
# round trip bounded by REDIS_TIMEOUT.
READINESS_DATABASE_SECONDS = 2.0


def _check_database() -> None:
    database: Any = connections["default"]
    row = database.probe(UNSAFE_ROLE_SQL, seconds=READINESS_DATABASE_SECONDS)
    if row is None or row[0]:
        raise UnsafeDatabaseRole(f"the database role {row[0] if row else 'is missing'}")


def _check_cache() -> None:
    if isinstance(cache, RedisCache):
        cache.probe()  # one round trip, past any remembered outage
        return
    key = f"readyz:{secrets.token_hex(8)}"
    value = secrets.token_hex(8)
    cache.set(key, value, timeout=10)
    if cache.get(key) != value:
        raise RuntimeError("the cache did not return what was written")
    cache.delete(key)


READINESS_CHECKS = {"database": _check_database, "cache": _check_cache}


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: the database and the cache both answer. 503 names what does not,
    within about 3 s (each check is bounded), whatever is down."""
    checks: dict[str, str] = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
        except UnsafeDatabaseRole:
            logger.error("Readiness check failed: %s role could lower row-level security", name)
            checks[name] = "unsafe_role"
        except Exception as error:
            # A dependency that is down is expected here: one line, no traceback.
            expected = is_database_outage(error) or isinstance(error, redis_outages)
            logger.warning(
                "Readiness check failed: %s (%s: %s)",
                name,
                type(error).__name__,
                str(error).strip()[:300],
                exc_info=not expected,
            )
            checks[name] = "unavailable"
        else:
            checks[name] = "ok"
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        return JsonResponse(
            {"status": "unavailable", "failing": failing, "checks": checks}, status=503
        )
    return JsonResponse({"status": "ok", "checks": checks})


@require_safe
def security_txt(request: HttpRequest) -> HttpResponse:
    """RFC 9116: who to tell about a vulnerability, and the policy for doing so."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    expires = today + timedelta(days=settings.SECURITY_TXT_EXPIRES_DAYS)
    lines = [f"Contact: {contact}" for contact in settings.SECURITY_TXT_CONTACT]
    lines += [
        f"Expires: {expires.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        f"Policy: {settings.SECURITY_TXT_POLICY}",
        f"Preferred-Languages: {settings.SECURITY_TXT_LANGUAGES}",
        f"Canonical: {request.build_absolute_uri()}",
    ]
    response = HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return error_response(request, 400, "bad_request", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return error_response(
        request, 403, "permission_denied", "You do not have permission to do this."
    )


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return error_response(request, 404, "not_found", "Not found.")


def server_error(request: HttpRequest) -> HttpResponse:
    """Anything unhandled; a dependency that is down (raised in middleware, where no view's
    handler sees it) is a 503 instead. Django calls this while handling the exception."""
    error = sys.exc_info()[1]
    if error is not None and (response := unavailable_response(request, error)) is not None:
        return response
    return error_response(request, 500, "server_error", "An unexpected error occurred.")
