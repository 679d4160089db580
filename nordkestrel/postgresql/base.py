"""Django's PostgreSQL backend (psycopg 3), with every wait for the server bounded.

PostgreSQL's own timeouts (``statement_timeout``, ``lock_timeout``,
``idle_in_transaction_session_timeout``, set per process type in nordkestrel/database.py)
end work the server is doing. They do nothing when the server itself does not answer: a
frozen server or one whose host hangs still has its kernel acknowledge every byte, so TCP
keepalives and ``tcp_user_timeout`` stay quiet too, and psycopg would wait on the socket for
ever. So here:

- every wait of a connection for the server (a query, a COPY row, a commit) is bounded by
  ``read_timeout`` (``OPTIONS["read_timeout"]``, seconds: the statement timeout plus a few
  seconds, so the server's own cancellation normally arrives first). Past it the
  connection's state is unknown: it is closed and :class:`ServerSilent` raised (an
  ``OperationalError``: the request answers 503 and Django opens a new connection for the
  next one);
- the health check Django runs before reusing a connection waits at most as long as a new
  connection may take (``connect_timeout``);
- once the server has made this process wait out a timeout (a read or a connection attempt),
  new connections fail at once for ``DB_RETRY_SECONDS`` (:data:`nordkestrel.outage.database`),
  then the next attempt tries again.

:func:`statement_timeout` gives one transaction a longer statement timeout and read bound (the
CSV exports' COPY).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connections
from django.db.backends.postgresql import base
from psycopg.abc import PQGen
from psycopg.connection import _WAIT_INTERVAL
from psycopg.errors import ConnectionTimeout, _WaitTimeout

from nordkestrel import outage
from nordkestrel.database import READ_GRACE_SECONDS


class ServerSilent(psycopg.OperationalError):
    """The server sent nothing within the read timeout; the connection was closed."""


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose waits without an explicit timeout last ``read_timeout``."""

    read_timeout: float | None = None

    def wait(
        self, gen: PQGen[Any], interval: float = _WAIT_INTERVAL, timeout: float | None = None
    ) -> Any:
        if timeout is not None or not self.read_timeout:
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, self.read_timeout)
        except _WaitTimeout:
            # Half a message may be on the wire: nothing more can be said on this connection.
            self.close()
            outage.database.trip(f"no answer within {self.read_timeout:g} s")
            raise ServerSilent(
                f"the database sent no answer within {self.read_timeout:g} s"
            ) from None


class DatabaseWrapper(base.DatabaseWrapper):
    read_timeout: float | None = None

    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        self.read_timeout = params.pop("read_timeout", None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if outage.database.open:
            raise psycopg.OperationalError(
                "the database did not answer a moment ago; trying again in "
                f"{outage.database.retry_after()} s"
            )
        try:
            connection = super().get_new_connection(conn_params)
        except ConnectionTimeout:
            outage.database.trip("no answer to a new connection")
            raise
        # Django connects with psycopg.connect; the subclass only bounds wait(), so the
        # connection becomes one in place (same layout, no state of its own).
        connection.__class__ = BoundedConnection
        connection.read_timeout = self.read_timeout
        outage.database.reset()
        return connection

    def is_usable(self) -> bool:
        connection = self.connection
        if not isinstance(connection, BoundedConnection):
            return bool(super().is_usable())
        saved = connection.read_timeout
        check = float(self.settings_dict["OPTIONS"].get("connect_timeout") or 0)
        if check and (not saved or check < saved):
            connection.read_timeout = check
        try:
            return bool(super().is_usable())
        finally:
            connection.read_timeout = saved

    def probe(self, query: str, *, seconds: float) -> tuple[Any, ...] | None:
        """Run ``query`` on a connection of its own, opened and closed here, within about
        ``seconds`` (libpq never waits less than 2 s for a connection). For readiness checks:
        it does not disturb this thread's connection and ends a remembered outage when it
        succeeds. Raises the connection's error."""
        started = time.monotonic()
        params = self.get_connection_params()
        params["connect_timeout"] = max(2, int(seconds))
        probe = BoundedConnection.connect(**params, autocommit=True)
        try:
            probe.read_timeout = max(0.5, seconds - (time.monotonic() - started))
            row = probe.execute(query).fetchone()
        finally:
            probe.close()
        outage.database.reset()
        return row


@contextmanager
def statement_timeout(seconds: float, *, using: str = "default") -> Iterator[None]:
    """Inside a transaction: its statements may run ``seconds`` (0: no limit), and the wait
    for each answer is bounded to match, until the block ends."""
    wrapper = connections[using]
    if not wrapper.in_atomic_block:
        raise RuntimeError("statement_timeout() applies to a transaction: open one first")
    with wrapper.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('statement_timeout'), set_config('statement_timeout', %s, "
            "true)",
            [f"{round(seconds * 1000)}ms"],
        )
        previous = cursor.fetchone()[0]
    connection = wrapper.connection
    saved = getattr(connection, "read_timeout", None)
    if isinstance(connection, BoundedConnection):
        connection.read_timeout = seconds + READ_GRACE_SECONDS if seconds else None
    try:
        yield
    finally:
        if isinstance(connection, BoundedConnection):
            connection.read_timeout = saved
    # Inside an outer transaction, its later statements get their own limit back.
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
