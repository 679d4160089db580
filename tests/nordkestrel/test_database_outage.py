"""The database down, silent or too slow, in one process: every wait is bounded, the answer is
503 ``database_unavailable`` with Retry-After (the error shape on the API, a page elsewhere)
wherever the error is raised, and the next request reconnects.

The live-server suite (tests/outage/) stages the same faults under granian."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import OperationalError, connection
from django.test import override_settings

from nordkestrel import outage
from nordkestrel.postgresql.base import ServerSilent, statement_timeout
from tests.nordkestrel.urls import LOCK_KEY
from tests.support.faultproxy import FaultProxy

pytestmark = pytest.mark.urls("tests.nordkestrel.urls")

SHAPE = {"type", "code", "detail", "attr"}


def assert_503(response, *, api: bool = True, code: str = "database_unavailable") -> None:
    assert response.status_code == 503, response.content[:500]
    assert int(response["Retry-After"]) >= 1
    if api:
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert set(body) == SHAPE
        assert (body["type"], body["code"]) == ("unavailable", code)
    else:
        assert response["Content-Type"].startswith("text/html")
        assert "try again" in response.content.decode().lower()


@pytest.fixture
def proxy():
    database = connection.settings_dict
    proxy = FaultProxy((database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432))).start()
    yield proxy
    proxy.stop()


# --- What bounds a wait on a silent server -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_statement_timeout_does_not_bound_a_silent_server(proxy):
    """The server-side timeout cannot fire when the server is frozen: a plain psycopg
    connection waits for as long as the silence lasts (here until the proxy lets go)."""
    params = connection.get_connection_params()
    params.update(port=proxy.port, options="-c statement_timeout=200", connect_timeout=5)
    plain = psycopg.Connection.connect(**params, autocommit=True)
    answers: list[object] = []
    try:
        proxy.silent()
        waiting = threading.Thread(
            target=lambda: answers.append(plain.execute("SELECT 1").fetchone())
        )
        waiting.start()
        waiting.join(3)
        assert waiting.is_alive(), "nothing bounds the wait but the server's answer"
        proxy.normal()
        waiting.join(10)
        assert answers == [(1,)]
    finally:
        plain.close()


@pytest.mark.django_db(transaction=True)
def test_the_read_timeout_bounds_a_silent_server_and_the_next_use_reconnects(proxy, reconnect_as):
    with reconnect_as(PORT=str(proxy.port), OPTIONS={"read_timeout": 1.0}):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        proxy.silent()
        started = time.monotonic()
        with pytest.raises(OperationalError) as raised, connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert time.monotonic() - started < 5
        assert isinstance(raised.value.__cause__, ServerSilent)
        assert connection.connection.closed
        # Remembered: new connections fail at once for a while instead of waiting again.
        assert outage.database.open
        connection.close()
        with pytest.raises(OperationalError, match="did not answer a moment ago"):
            connection.ensure_connection()
        proxy.normal()
        outage.database.reset()
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 2")
            assert cursor.fetchone() == (2,)


@pytest.mark.django_db(transaction=True)
def test_a_silent_server_bounds_the_health_check_by_the_connect_timeout(proxy, reconnect_as):
    options = {"read_timeout": 60.0, "connect_timeout": 2}
    with reconnect_as(PORT=str(proxy.port), OPTIONS=options, CONN_HEALTH_CHECKS=True):
        connection.ensure_connection()
        proxy.silent()
        started = time.monotonic()
        assert connection.is_usable() is False
        assert time.monotonic() - started < 5


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_to_a_silent_server_times_out(proxy, reconnect_as, http):
    proxy.silent()
    with reconnect_as(PORT=str(proxy.port), OPTIONS={"connect_timeout": 2}):
        started = time.monotonic()
        assert_503(http.get("/api/v1/test/query"))
        assert time.monotonic() - started < 5
        # The next request is told at once.
        started = time.monotonic()
        assert_503(http.get("/test/query"), api=False)
        assert time.monotonic() - started < 1


@pytest.mark.django_db(transaction=True)
def test_a_stopped_database_is_a_503_and_the_next_request_reconnects(reconnect_as, http):
    # Nothing listens on port 1: refused, as a stopped server is.
    with reconnect_as(PORT="1", OPTIONS={"host": "127.0.0.1"}):
        assert_503(http.get("/api/v1/test/query"))
        assert_503(http.get("/test/query"), api=False)
    assert http.get("/api/v1/test/query").status_code == 200


# --- Too slow: the server's own timeouts -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/test/query?slow", "/test/query?slow"])
def test_a_statement_past_its_timeout_is_a_503(http, path):
    assert_503(http.get(path), api=path.startswith("/api/"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/api/v1/test/query?locked", "/test/query?locked"])
def test_a_lock_wait_past_its_timeout_is_a_503(http, path):
    holder = psycopg.Connection.connect(**connection.get_connection_params(), autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        # Another transaction holds what this one needs: a write conflict, sent again later.
        assert_503(http.get(path), api=path.startswith("/api/"), code="write_conflict")
    finally:
        holder.close()
    assert http.get(path).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_transaction_cut_at_its_commit_is_a_503_and_the_next_request_reconnects(http):
    """The server ends a session idle in its transaction: the COMMIT fails, nothing is
    written, and the broken connection is replaced for the next request."""
    assert_503(http.get("/api/v1/test/query?idle"))
    assert http.get("/api/v1/test/query").status_code == 200


# --- Raised outside a view -----------------------------------------------------------------


class DatabaseDownMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raise OperationalError("connection to server failed: Connection refused")


@pytest.mark.parametrize(("path", "api"), [("/api/v1/", True), ("/healthz", False)])
def test_an_outage_raised_in_middleware_is_a_503(http, settings, path, api):
    settings.DEBUG = False
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[:3],  # client IP, storefront host, request log
        "tests.nordkestrel.test_database_outage.DatabaseDownMiddleware",
    ]
    response = http.get(path)
    assert_503(response, api=api)
    assert response["X-Request-ID"]


def test_any_other_error_in_middleware_stays_a_500(http, settings):
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[:3],
        "tests.nordkestrel.test_database_outage.BrokenMiddleware",
    ]
    assert http.get("/api/v1/").status_code == 500


class BrokenMiddleware(DatabaseDownMiddleware):
    def __call__(self, request):
        raise RuntimeError("a bug")


# --- Longer statements where they are expected -----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_statement_timeout_applies_to_one_transaction_and_restores_the_rest():
    from django.db import transaction

    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            return cursor.fetchone()[0]

    outside = setting()
    with transaction.atomic():
        with statement_timeout(0.2):
            assert setting() == "200ms"
            with (
                pytest.raises(OperationalError),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute("SELECT pg_sleep(2)")
        assert setting() == outside
    with pytest.raises(RuntimeError, match="transaction"), statement_timeout(1):
        pass


@override_settings(DB_RETRY_SECONDS=7)
def test_the_retry_after_follows_the_remembered_outage():
    outage.database.trip("a test")
    assert 1 <= outage.database.retry_after() <= 7
    outage.database.reset()
    assert not outage.database.open
