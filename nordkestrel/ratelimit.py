"""Rate limits that answer 429 with ``Retry-After``.

django-ratelimit counts in the shared cache (Redis in production, so every process shares one
count). Its own exception carries no timing; :func:`rate_limit` asks it for the usage and
raises :class:`RateLimitExceeded` with the seconds left in the window.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit import UNSAFE
from django_ratelimit.core import get_usage
from django_ratelimit.exceptions import Ratelimited

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 60

View = TypeVar("View", bound=Callable[..., Any])


class RateLimitExceeded(Ratelimited):
    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many requests.")
        self.retry_after = max(1, int(retry_after))


def retry_after(exception: Exception) -> int:
    return getattr(exception, "retry_after", DEFAULT_RETRY_AFTER)


def rate_limit(
    *, key: str, rate: str, group: str | None = None, method: Any = UNSAFE
) -> Callable[[View], View]:
    """Limit a view to ``rate`` requests per ``key`` (e.g. ``"ip"``, ``"10/m"``)."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            usage = get_usage(
                request, group=group, fn=view, key=key, rate=rate, method=method, increment=True
            )
            if usage is not None and usage["should_limit"]:
                raise RateLimitExceeded(retry_after=usage["time_left"])
            return view(request, *args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def limit(request: HttpRequest, *, group: str, rate: str, key: str = "ip") -> None:
    """Count one use of ``group`` for this client; past ``rate``, raise 429. For limits that
    apply to part of a view only (e.g. a checkout that carries a promotion code)."""
    usage = get_usage(request, group=group, key=key, rate=rate, increment=True)
    if usage is not None and usage["should_limit"]:
        raise RateLimitExceeded(retry_after=usage["time_left"])


class FailureLimit:
    """Counts failures (e.g. refused sign-ins) per client IP; past ``rate``, answers 429.

    ``check`` runs before the work and ``record`` after a failure, so successes cost no
    write. A cache outage fails open here: it must not take sign-in down with it.
    """

    def __init__(self, group: str, rate: Callable[[], str]) -> None:
        self.group = group
        self.rate = rate

    def _usage(self, request: HttpRequest, *, increment: bool) -> dict[str, Any] | None:
        try:
            return get_usage(
                request, group=self.group, key="ip", rate=self.rate(), increment=increment
            )
        except Exception:
            logger.warning("Rate-limit counter unavailable for %s", self.group, exc_info=True)
            return None

    def check(self, request: HttpRequest) -> None:
        usage = self._usage(request, increment=False)
        if usage is not None and usage["count"] >= usage["limit"] > 0:
            raise RateLimitExceeded(retry_after=usage["time_left"])

    def record(self, request: HttpRequest) -> None:
        self._usage(request, increment=True)


def _auth_failure_rate() -> str:
    return str(settings.AUTH_FAILURE_RATE)


# Refused tokens and sessions, shared by the API and the dashboard.
auth_failures = FailureLimit("auth-failure", _auth_failure_rate)
