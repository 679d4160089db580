"""The isolation suite again, through a real PgBouncer in transaction mode.

Production sits behind PgBouncer with ``pool_mode = transaction``: one server connection
serves many clients, a transaction at a time. The wall holds there only if nothing it relies
on outlives a transaction: the restaurant is set with ``set_config(..., true)`` (SET LOCAL)
and the role is the login's own, never SET. Here the pool has a single server connection per
role, so every test below shares it with the others, and the tests of this module check that
no restaurant setting or role survives into the next client's transaction.

Every test of ``test_rls`` and ``test_database_wall`` is collected again in this module (the
imports below) and runs with the ``default`` and ``platform`` aliases pointed at PgBouncer.
PgBouncer is Debian's ``pgbouncer``; ``.ci/run`` installs it, and elsewhere the module is
skipped when it is missing (failed under ``REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections

from tenants.context import tenant_context
from tests.conftest import require_service
from tests.security.test_database_wall import *  # noqa: F403
from tests.security.test_rls import *  # noqa: F403

ALIASES = ("default", "platform")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def pgbouncer(django_db_setup, django_db_blocker):
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    require_service("pgbouncer", Path(binary).exists())
    database = settings.DATABASES["default"]
    # Its own folder under /tmp: PgBouncer may run as another user (below).
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    port = _free_port()
    # The roles the imported tests log in as (the owner and a superuser among them).
    users = {database["USER"] for database in settings.DATABASES.values()} | {"postgres"}
    (folder / "users.txt").write_text("".join(f'"{user}" ""\n' for user in users))
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={database.get('HOST') or '127.0.0.1'} port={database.get('PORT') or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 1\nmin_pool_size = 0\n"
        "max_client_conn = 50\nserver_reset_query =\n"
        f"stats_users = {settings.DATABASES['default']['USER']}\n"
        # The client's -c timeouts (nordkestrel/database.py) do not pass PgBouncer: behind
        # it, production sets them on the roles (README, "Database roles").
        "ignore_startup_parameters = options, extra_float_digits\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
    )
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root (CI runs as root)
        folder.chmod(0o777)
        command = ["runuser", "-u", "nobody", "--", *command]
    output = (folder / "output.txt").open("wb")
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"pgbouncer did not start: {(folder / 'output.txt').read_text()}")
            time.sleep(0.05)
    saved = {alias: dict(settings.DATABASES[alias]) for alias in ALIASES}
    with django_db_blocker.unblock():
        for alias in ALIASES:
            connections[alias].close()
            connections[alias].settings_dict.update(HOST="127.0.0.1", PORT=str(port))
    yield port
    with django_db_blocker.unblock():
        for alias in ALIASES:
            connections[alias].close()
            connections[alias].settings_dict.update(
                HOST=saved[alias].get("HOST"), PORT=saved[alias].get("PORT")
            )
    process.terminate()
    process.wait(timeout=10)
    output.close()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _through_pgbouncer(pgbouncer):
    """Every test here, the imported ones included, talks to PgBouncer, as both roles."""
    for alias in ALIASES:
        assert connections[alias].settings_dict["PORT"] == str(pgbouncer), alias


def _one(client: psycopg.Connection, query: str) -> object:
    row = client.execute(query).fetchone()
    assert row is not None
    return row[0]


def _client(port: int, user: str) -> psycopg.Connection:
    name = settings.DATABASES["default"]["NAME"]
    return psycopg.connect(host="127.0.0.1", port=port, user=user, dbname=name, autocommit=True)


def test_the_connection_really_goes_through_pgbouncer(pgbouncer, db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (settings.DATABASE_ROLES["default"],)
    app = settings.DATABASE_ROLES["default"]
    console = psycopg.connect(
        host="127.0.0.1", port=pgbouncer, user=app, dbname="pgbouncer", autocommit=True
    )
    with console:
        shown = console.execute("SHOW CLIENTS")
        columns = [column.name for column in shown.description or []]
        clients = [dict(zip(columns, row, strict=True)) for row in shown.fetchall()]
    name = settings.DATABASES["default"]["NAME"]
    assert any(c["user"] == app and c["database"] == name for c in clients), clients


@pytest.mark.django_db(transaction=True)
def test_no_restaurant_or_role_outlives_its_transaction_on_a_shared_server_connection(
    pgbouncer, restaurants
):
    ours, _ = restaurants
    app = settings.DATABASE_ROLES["default"]
    with _client(pgbouncer, app) as first, _client(pgbouncer, app) as second:
        # One server connection for the role: both clients take turns on it.
        backends = set()
        for _ in range(3):
            with first.transaction():
                first.execute("SELECT set_config('app.restaurant_id', %s, true)", [str(ours.pk)])
                backends.add(_one(first, "SELECT pg_backend_pid()"))
                seen = first.execute("SELECT DISTINCT restaurant_id FROM staff_staffmember")
                assert {row[0] for row in seen.fetchall()} <= {ours.pk}
            with second.transaction():
                backends.add(_one(second, "SELECT pg_backend_pid()"))
                setting = _one(
                    second, "SELECT coalesce(current_setting('app.restaurant_id', true), '')"
                )
                assert setting == "", "the first client's restaurant reached the second"
                assert second.execute("SELECT count(*) FROM staff_staffmember").fetchone() == (0,)
                assert second.execute("SELECT current_user").fetchone() == (app,)
        assert len(backends) == 1, "the pool shares one server connection"
        # A client that tries to change its role fails, and the next one is still itself.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            first.execute(f'SET ROLE "{settings.DATABASE_ROLES["platform"]}"')
        assert second.execute("SELECT current_user").fetchone() == (app,)


@pytest.mark.django_db(transaction=True)
def test_the_application_sets_its_restaurant_per_transaction_only(pgbouncer, restaurants):
    """The application's own tenant scope through the pool: the next transaction on the
    same server connection, another client's, has no restaurant."""
    ours, _ = restaurants
    with tenant_context(ours), connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    with _client(pgbouncer, settings.DATABASE_ROLES["default"]) as other:
        assert other.execute("SELECT pg_backend_pid()").fetchone() == (backend,)
        setting = other.execute(
            "SELECT coalesce(current_setting('app.restaurant_id', true), '')"
        ).fetchone()
        assert setting == ("",)
