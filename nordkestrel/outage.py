"""A dependency that is down, silent or too slow: what the process remembers, and the 503.

- :class:`Breaker`: a process-wide memory of an outage. Once a dependency has made the
  process wait out a timeout, the next calls within ``hold`` seconds fail at once instead of
  each waiting again (with one blocking thread per web process, requests that queued behind
  a timeout would otherwise each wait their own, and the health probes with them). After
  ``hold`` seconds the next call tries again; its success ends the outage. Each opening and
  the recovery are logged once.
- :func:`unavailable`: whether an exception is a refusal that is no fault of the request,
  and what to answer: 503 ``write_conflict`` (``Retry-After: 1``) when PostgreSQL gave up
  the transaction because of another one running at the same moment (a deadlock, a
  serialization failure, a lock not granted within ``lock_timeout``); 503
  ``database_unavailable`` when PostgreSQL is down, silent or too slow (no connection, a
  connection cut, no answer in time, a statement timeout); 409 ``changed_meanwhile`` for a
  constraint that a concurrent change broke (often found at COMMIT, as foreign keys are
  checked there); or the code of a :class:`ServiceUnavailable`. Nothing of the request was
  written in any of these. The API's exception handler,
  :class:`nordkestrel.middleware.ServiceUnavailableMiddleware` (views, pages, and COMMIT,
  which for the API happens after DRF's handler has answered) and the 500 handler
  (anything raised in middleware) all answer with it: JSON in the one error shape on API
  paths, a short page elsewhere.

The request is not run again on the server: what it did outside the database (a call to
Stripe, a stored file, a rate-limit count) cannot be rolled back and would happen twice.
The client repeats it as it repeats any request, with its idempotency key where it sent one.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import IntegrityError
from django.db import InterfaceError as DjangoInterfaceError
from django.db import OperationalError as DjangoOperationalError
from django.http import HttpRequest, HttpResponse

from nordkestrel.errors import error_response

logger = logging.getLogger("nordkestrel.outage")

DATABASE_DETAIL = "The service cannot reach its database right now. Please try again shortly."
WRITE_CONFLICT_DETAIL = (
    "Another change was being saved at the same moment, so nothing of this one was saved. "
    "Please try again."
)
CHANGED_MEANWHILE_DETAIL = (
    "Something this change refers to was changed or removed at the same moment, so nothing "
    "of it was saved. Reload and try again."
)
# PostgreSQL gave up the transaction because of another one running at the same moment:
# nothing of it was written and the same request succeeds when repeated.
CONFLICT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (lock_timeout)
    }
)


class Breaker:
    """Remembers, for ``hold()`` seconds, that a dependency made this process wait in vain."""

    def __init__(self, name: str, hold: Callable[[], float]) -> None:
        self.name = name
        self.hold = hold
        self._until = 0.0
        self._down = False
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        """True while calls should fail at once rather than wait."""
        return time.monotonic() < self._until

    def retry_after(self) -> int:
        """Whole seconds a client should wait before trying again (at least 1)."""
        left = self._until - time.monotonic()
        return max(1, math.ceil(left if left > 0 else self.hold()))

    def trip(self, reason: str) -> None:
        with self._lock:
            first = not self._down
            self._down = True
            self._until = time.monotonic() + self.hold()
        if first:
            logger.error(
                "%s unavailable (%s): failing at once for %g s, then trying again",
                self.name,
                reason,
                self.hold(),
                extra={"dependency": self.name},
            )

    def reset(self) -> None:
        """The dependency answered: the outage, if any, is over."""
        if not self._down:
            return
        with self._lock:
            was_down, self._down, self._until = self._down, False, 0.0
        if was_down:
            logger.warning("%s answers again", self.name, extra={"dependency": self.name})


def _database_retry_seconds() -> float:
    return float(settings.DB_RETRY_SECONDS)


# PostgreSQL, for every connection of this process (nordkestrel/postgresql/base.py).
database = Breaker("database", _database_retry_seconds)


class ServiceUnavailable(Exception):
    """A dependency this request needs is down: 503 with ``code`` and ``Retry-After``."""

    code = "unavailable"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = max(1, int(retry_after))


@dataclass(frozen=True)
class Unavailable:
    code: str
    detail: str
    retry_after: int | None
    status: int = 503

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after else {}


# What PostgreSQL raises when it is down, silent or too slow (psycopg's own classes where a
# module uses psycopg directly, e.g. COPY; Django's where they went through its wrapper).
# OperationalError covers refused and cut connections, connection and read timeouts,
# statement_timeout (QueryCanceled), lock_timeout (LockNotAvailable), deadlocks and
# serialization failures (a retry succeeds), too many connections and a server shutting down.
DATABASE_OUTAGES: tuple[type[BaseException], ...] = (
    DjangoOperationalError,
    DjangoInterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    # A session ended for idling in its transaction: what it did is rolled back.
    psycopg.errors.IdleInTransactionSessionTimeout,
)


def is_database_outage(error: BaseException) -> bool:
    """True when ``error`` (or what it was raised from) says the database is unavailable."""
    seen: BaseException | None = error
    for _ in range(5):  # Django's wrapper around psycopg's error: a short chain
        if seen is None:
            return False
        if isinstance(seen, DATABASE_OUTAGES):
            return True
        seen = seen.__cause__
    return False


def sqlstate(error: BaseException) -> str:
    """PostgreSQL's SQLSTATE of a database error, or of the psycopg error it was raised from
    ('' when there is none, e.g. no connection)."""
    state = getattr(error, "sqlstate", None) or getattr(error.__cause__, "sqlstate", None)
    return str(state or "")


def unavailable(error: BaseException) -> Unavailable | None:
    """What to answer for ``error`` when it is a refusal that is no fault of the request (see
    the module's docstring), else None."""
    if isinstance(error, ServiceUnavailable):
        return Unavailable(error.code, error.detail, error.retry_after)
    if sqlstate(error) in CONFLICT_SQLSTATES:
        return Unavailable("write_conflict", WRITE_CONFLICT_DETAIL, 1)
    if isinstance(error, IntegrityError):
        return Unavailable("changed_meanwhile", CHANGED_MEANWHILE_DETAIL, None, status=409)
    if is_database_outage(error):
        return Unavailable("database_unavailable", DATABASE_DETAIL, database.retry_after())
    return None


def log_unavailable(request: HttpRequest | None, error: BaseException, answer: Unavailable) -> None:
    """One line per refused request: the cause, without the traceback of an expected state."""
    logger.warning(
        "%s %s answered %s %s: %s",
        getattr(request, "method", "-"),
        getattr(request, "path", "-"),
        answer.status,
        answer.code,
        f"{type(error).__name__}: {error}".strip()[:300],
    )


def unavailable_response(request: HttpRequest, error: BaseException) -> HttpResponse | None:
    """The 503 for ``error`` (JSON on the API, a page elsewhere), or None if it is no outage."""
    answer = unavailable(error)
    if answer is None:
        return None
    log_unavailable(request, error, answer)
    return error_response(
        request, answer.status, answer.code, answer.detail, headers=answer.headers or None
    )
