"""The database settings: PostgreSQL's timeouts per process type, and the client's own bounds.

Two kinds of process use the database differently, so each gets its own limits:

- ``web`` (granian, ``runserver``): a request that waits long helps nobody, and a web process
  waiting on the database holds up the requests queued behind it, health probes included.
  Short limits: a database that is down or too slow answers 503 ``database_unavailable``.
- ``worker`` (``db_worker``, ``run_periodic``, ``migrate`` and every other management
  command, and the test suite): long tasks, migrations and exports may legitimately run for
  minutes. Longer limits.

``nordkestrel/wsgi.py`` and ``asgi.py`` say ``web`` (``NORDKESTREL_PROCESS``); everything else
is ``worker``. Every limit is an environment variable (README, "Configuration").

Sent to the server with the connection (no extra round trip): ``statement_timeout``,
``lock_timeout`` and ``idle_in_transaction_session_timeout``. Kept by the client: the
connection timeout, the bound on each wait for an answer (``read_timeout``, see
nordkestrel/postgresql/base.py), and TCP keepalives with ``tcp_user_timeout`` so that a
connection to a host that vanished (no acknowledgements at all) is dropped by the kernel.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import dj_database_url

from nordkestrel import env

ENGINE = "nordkestrel.postgresql"
WEB, WORKER = "web", "worker"
# Beyond the statement timeout: the time the server's cancellation may take to reach us.
READ_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class Timeouts:
    """Seconds; 0 disables a server-side limit."""

    connect: int
    statement: float
    lock: float
    idle_in_transaction: float

    @property
    def read(self) -> float | None:
        """The longest wait for any answer from the server (None: as long as it takes)."""
        return self.statement + READ_GRACE_SECONDS if self.statement else None


def process_kind() -> str:
    kind = env.get_str("NORDKESTREL_PROCESS")
    if kind in (WEB, WORKER):
        return kind
    # Development's server answers requests like granian does.
    return WEB if sys.argv[1:2] == ["runserver"] else WORKER


def timeouts(kind: str) -> Timeouts:
    if kind == WEB:
        return Timeouts(
            connect=env.get_int("DB_CONNECT_TIMEOUT", 3),
            statement=env.get_seconds("DB_STATEMENT_TIMEOUT", 5),
            lock=env.get_seconds("DB_LOCK_TIMEOUT", 3),
            # Above the slowest outside call a request makes inside a transaction (Stripe:
            # two retries of 10 s + 10 s).
            idle_in_transaction=env.get_seconds("DB_IDLE_IN_TRANSACTION_TIMEOUT", 60),
        )
    return Timeouts(
        connect=env.get_int("DB_WORKER_CONNECT_TIMEOUT", 10),
        statement=env.get_seconds("DB_WORKER_STATEMENT_TIMEOUT", 300),
        lock=env.get_seconds("DB_WORKER_LOCK_TIMEOUT", 30),
        idle_in_transaction=env.get_seconds("DB_WORKER_IDLE_IN_TRANSACTION_TIMEOUT", 300),
    )


def _milliseconds(seconds: float) -> int:
    return round(seconds * 1000)


def role_url(url: str, suffix: str) -> str:
    """``url`` with its user ``<user>_<suffix>`` and no password (nordkestrel/dbroles.py)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    user = parts.username or ""
    if not user:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}_{suffix}@{host}"))


def database_settings(url: str, limits: Timeouts, *, conn_max_age: int) -> dict[str, Any]:
    """``DATABASES["default"]`` for ``url``: the bounded backend and these limits. Options in
    the URL (``?connect_timeout=``, ``?options=-c ...``) win over the environment's."""
    database: dict[str, Any] = dict(
        dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True)
    )
    database["ENGINE"] = ENGINE
    options: dict[str, Any] = database.setdefault("OPTIONS", {})
    options.setdefault("connect_timeout", limits.connect)
    server = (
        f"-c statement_timeout={_milliseconds(limits.statement)}"
        f" -c lock_timeout={_milliseconds(limits.lock)}"
        f" -c idle_in_transaction_session_timeout={_milliseconds(limits.idle_in_transaction)}"
    )
    # PostgreSQL applies the last -c for a name: the URL's own options come after ours.
    options["options"] = f"{server} {options['options']}" if options.get("options") else server
    options.setdefault("read_timeout", limits.read)
    # A peer that stops acknowledging (a host gone, a cut network) is dropped by the kernel.
    options.setdefault("keepalives", 1)
    options.setdefault("keepalives_idle", 15)
    options.setdefault("keepalives_interval", 5)
    options.setdefault("keepalives_count", 3)
    options.setdefault("tcp_user_timeout", _milliseconds(min(limits.read or 30, 30)))
    return database
