"""Which connection a query uses: the application role's, or the platform role's.

Three aliases name the same database as three roles (nordkestrel/dbroles.py):

- ``default``, the application role, for everything a request or task does for one
  restaurant; row-level security holds it to that restaurant whatever SQL it runs;
- ``platform``, the platform role, the only role the policies let across restaurants. A
  query reaches it only inside ``tenants.context.tenant_bypass()``, which says so, logs it,
  and sets :data:`current_alias` for the block: the router then sends every query of the
  block to that connection, in one transaction;
- ``owner``, the schema's owner, for ``manage.py migrate --database owner`` only.

Code that writes raw SQL takes its connection from :func:`current_connection`, so that it
runs where the ORM's queries of the same block run.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

PLATFORM = "platform"
OWNER = "owner"

current_alias: ContextVar[str] = ContextVar("database_alias", default=DEFAULT_DB_ALIAS)


def current_connection() -> BaseDatabaseWrapper:
    return connections[current_alias.get()]


class Router:
    """Every model follows :data:`current_alias`; an instance loaded across restaurants is
    saved, outside the block, as the application role like any other."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return current_alias.get()

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return current_alias.get()

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return True
