import os
from contextlib import contextmanager

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
    from apikeys import credentials as api_keys
    from menus import storefront
    from nordkestrel import cache as redis_cache
    from nordkestrel import outage
    from tenants import hours, selectors

    selectors._host_memo.clear()
    hours._schedules.clear()
    storefront._checked.clear()
    storefront._documents.clear()
    api_keys._memo.clear()
    # An outage a test staged (nordkestrel/outage.py) is over for the next one.
    outage.database.reset()
    for breaker in redis_cache._breakers.values():
        breaker.reset()


@pytest.fixture(autouse=True)
def _no_dns(monkeypatch):
    """Webhook host names resolve through no real DNS at test time (tests/webhooks/conftest.py
    gives a table of names where a test needs one)."""
    from webhooks import addresses

    def unresolvable(host: str, port: int) -> list[str]:
        raise OSError(f"[Errno -2] Name or service not known: {host}")

    monkeypatch.setattr(addresses, "resolver", unresolvable)


@pytest.fixture
def private_targets(settings):
    """Loopback and http webhook targets allowed, as in development (production refuses
    this)."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def receiver(private_targets):
    """A webhook receiver on loopback (tests/support/webhook_receiver.py)."""
    from tests.support.webhook_receiver import Receiver

    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def _tasks_run_at_once():
    """Ordinary tests run each task the moment it is enqueued (Django's ImmediateBackend), so
    an order email is in ``mail.outbox`` as soon as the order commits. Tests of the queue
    itself ask for the real database backend with ``db_tasks``."""
    from django.test import override_settings

    from tests.support.tasks import IMMEDIATE_BACKEND

    with override_settings(TASKS=IMMEDIATE_BACKEND):
        yield


@pytest.fixture
def db_tasks(transactional_db, settings):
    """Tasks go through the real queue, as in production: ``enqueue`` stores a django-tasks-db
    row in the test database and nothing runs until the test runs the real worker.

    Returns a ``tests.support.tasks.TaskQueue``:
    - ``db_tasks.queued()``: the rows waiting for a worker (``task_path``, ``args_kwargs``);
    - ``db_tasks.run()``: runs ``manage.py db_worker --batch`` in the test's thread until no
      task is ready (tasks enqueued by tasks run too) and returns the finished
      ``TaskResult``s in order (``status``, ``return_value``, ``errors``). A task that fails
      fails the test with its traceback; pass ``expect_failures=True`` to assert on failures.

    It brings ``transactional_db``: ``on_commit`` enqueues only on a real commit, and the
    worker claims and records each task in transactions of its own. Example::

        def test_the_export_is_built_by_the_worker(db_tasks, roster):
            ...  # a request or service that enqueues on commit
            assert [row.task_path for row in db_tasks.queued()] == ["exports.tasks.build"]
            (result,) = db_tasks.run()
            assert result.status == "SUCCESSFUL"
    """
    from tests.support.tasks import DATABASE_BACKEND, TaskQueue

    settings.TASKS = DATABASE_BACKEND
    return TaskQueue()


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


_credentials: dict[str, tuple[str, str]] = {}
_owner_connections: list = []


def _remember_credentials() -> None:
    from django.conf import settings

    if not _credentials:
        for name, database in settings.DATABASES.items():
            _credentials[name] = (database.get("USER", ""), database.get("PASSWORD", ""))


def _login_as(alias: str) -> None:
    """Log the default connection in as the role of another alias (its user and password)."""
    from django.db import connections

    _remember_credentials()
    connection = connections["default"]
    connection.close()
    connection.settings_dict["USER"], connection.settings_dict["PASSWORD"] = _credentials[alias]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """The owner creates the test database and migrates it (the application role may create
    nothing), as ``manage.py migrate --database owner`` does outside tests."""
    _login_as("owner")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Then every test runs as the application role; the owner drops the database at the end."""
    _login_as("default")
    yield
    from django.db import connections

    for connection in _owner_connections:
        connection.close()
    with django_db_blocker.unblock():
        connections.close_all()
        _login_as("owner")


def _every_test_may_use_the_platform_connection():
    """Code under test reaches the platform role through tenant_bypass(); the platform alias
    is a mirror of the test database (no transaction or flush of its own)."""
    from django.test import TestCase, TransactionTestCase

    # The owner's alias too, for Django's own look at every alias's migration history.
    TransactionTestCase.databases = {"default", "platform", "owner"}
    TestCase.databases = {"default", "platform", "owner"}


_every_test_may_use_the_platform_connection()


def _connect_as_owner():
    """A psycopg connection to the test database as the schema's owner (autocommit)."""
    import psycopg
    from django.db import connections

    _remember_credentials()
    params = dict(connections["default"].get_connection_params())
    params["user"], password = _credentials["owner"]
    params["password"] = password or None
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


@contextmanager
def owner_connection():
    """The owner's own connection, for a test's set-up that no application role may do."""
    connection = _connect_as_owner()
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture(scope="session", autouse=True)
def _flush_as_the_owner():
    """The suite's between-test flush TRUNCATEs every table, which only the owner may do
    (the application role has no TRUNCATE privilege), and the audit tables only in a
    transaction that asked for it in a database named test_* (the trigger)."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush
    owner = _owner_connections

    def execute_sql_flush(self, sql_list):
        if not owner or owner[0].closed:
            owner[:] = [_connect_as_owner()]
        with owner[0].transaction(), owner[0].cursor() as cursor:
            cursor.execute("SELECT set_config('app.audit_allow_truncate', 'on', true)")
            for statement in sql_list:
                cursor.execute(statement)

    DatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign]
    yield
    DatabaseOperations.execute_sql_flush = original  # type: ignore[method-assign]
    for connection in owner:
        connection.close()


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


@pytest.fixture(scope="module")
def s3_server():
    """An S3-compatible server on loopback (moto) for boto3 and django-storages; one per
    test module, each test making its own bucket."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
