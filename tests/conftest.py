import os

import pytest
from django.core.cache import cache
from django.test import Client

# .ci/run sets this: there, a test whose service is missing fails instead of skipping.
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def require_service(name: str, available: bool) -> None:
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{name} is required (REQUIRE_SERVICES=1) but is not configured")
    pytest.skip(f"{name} is not configured here; CI runs this test against it")


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit counters and cached lookups never leak from one test into the next."""
    cache.clear()
    _forget_process_memos()
    yield
    cache.clear()
    _forget_process_memos()


def _forget_process_memos() -> None:
    from menus import storefront
    from tenants import selectors

    selectors._host_memo.clear()
    storefront._checked.clear()
    storefront._documents.clear()


@pytest.fixture
def http():
    """A client that returns the 500 response instead of re-raising, as a browser sees it."""
    return Client(raise_request_exception=False)


@pytest.fixture
def restaurants(db):
    """Two restaurants in every tenant test, so a leak has somewhere to go."""
    from tests.factories import make_restaurant

    return make_restaurant("ours"), make_restaurant("theirs")


@pytest.fixture
def roster(restaurants):
    """A staff member of every role in both restaurants: roster[(slug, role)]."""
    from staff.roles import Role
    from tests.factories import make_staff

    return {
        (restaurant.slug, role.value): make_staff(restaurant, role)
        for restaurant in restaurants
        for role in Role
    }


@pytest.fixture
def frozen_ratelimit_clock(monkeypatch):
    """Keep django-ratelimit in one window, so a test never straddles a window boundary."""
    import time

    import django_ratelimit.core

    fixed = float(int(time.time()))

    class Clock:
        @staticmethod
        def time() -> float:
            return fixed

    monkeypatch.setattr(django_ratelimit.core, "time", Clock)


@pytest.fixture
def reconnect_as():
    """Point the default connection elsewhere (a dead port, another role) for one block."""
    from contextlib import contextmanager

    from django.db import connections

    @contextmanager
    def swap(**changes):
        connection = connections["default"]
        saved = dict(connection.settings_dict)
        connection.close()
        options = changes.pop("OPTIONS", None)
        connection.settings_dict.update(changes)
        if options is not None:
            connection.settings_dict["OPTIONS"] = {**saved["OPTIONS"], **options}
        try:
            yield
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)

    return swap


@pytest.fixture(scope="session", autouse=True)
def _flush_may_truncate_audit():
    """Let the suite's between-test flush TRUNCATE the audit tables of the test database.

    The trigger allows that only in a database named test_* and only in a transaction that
    asked for it; here, only Django's flush asks.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        allow = "SELECT set_config('app.audit_allow_truncate', 'on', true)"
        return original(self, [allow, *sql_list])

    DatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign]
    yield
    DatabaseOperations.execute_sql_flush = original  # type: ignore[method-assign]


@pytest.fixture
def stripe_stand_in(settings):
    """Stripe's API on loopback for the real SDK, with test keys and webhook secrets."""
    from tests.support.stripe_server import StripeStandIn, start

    stand_in = StripeStandIn()
    server = start(stand_in)
    settings.STRIPE_SECRET_KEY = stand_in.api_key
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_standin"
    settings.STRIPE_API_BASE = stand_in.url
    settings.STRIPE_WEBHOOK_SECRET = "whsec_platform_test"
    settings.STRIPE_CONNECT_WEBHOOK_SECRET = "whsec_connect_test"
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
