"""The three database roles, created once per server by someone who may create roles.

- ``<app>_owner`` owns the database and its schema and runs migrations (``manage.py migrate
  --database owner``); nothing else logs in as it. It may create databases (the test runner's).
- ``<app>``, the application role of the web and worker processes: may log in, is neither
  superuser nor BYPASSRLS, owns nothing, may create nothing. It gets SELECT, INSERT, UPDATE and
  DELETE on the tables (and the use of their sequences) from the grants the owner reapplies
  after every migration (``nordkestrel/dbgrants.py``), the audit log's tables excepted: there
  it may only read and append.
- ``<app>_platform``, the platform role: the same grants, and it is the role the row-level
  policies let across restaurants (nordkestrel/dbgrants.py). Only code inside
  ``tenant_bypass()`` reaches it, over a connection of its own (the ``platform`` alias).

No role is a member of another: the application role cannot ``SET ROLE`` to either.

Development (the embedded server) and CI (``.ci/run``) run this with a superuser's URL::

    python -m nordkestrel.dbroles --superuser-url postgres://postgres@127.0.0.1/postgres \\
        --app nordkestrel_ci --database nordkestrel_ci

Production prints the statements for its own administrator (``--print``) and sets passwords
separately. Running it again changes nothing; a database that the application role owned
(the layout before the owner existed) is handed to the owner, objects and all.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Roles:
    app: str

    @property
    def owner(self) -> str:
        return f"{self.app}_owner"

    @property
    def platform(self) -> str:
        return f"{self.app}_platform"


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name[0].isalpha() or len(name) > 55:
        raise ValueError(f"not a plain role or database name: {name!r}")
    return f'"{name}"'


def cluster_statements(roles: Roles) -> Iterator[str]:
    """Create or correct the roles (idempotent; run in the ``postgres`` database)."""
    attributes = {
        roles.owner: "LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB NOCREATEROLE NOREPLICATION",
        roles.app: "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION",
        roles.platform: "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION",
    }
    for role, attrs in attributes.items():
        yield (
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') "  # noqa: S608 - a checked name
            f"THEN CREATE ROLE {_ident(role)}; END IF; END $$"
        )
        yield f"ALTER ROLE {_ident(role)} {attrs}"
    # No memberships between them, whoever granted one before.
    for member in attributes:
        for group in attributes:
            if member != group:
                yield (
                    f"DO $$ BEGIN IF pg_has_role('{member}', '{group}', 'MEMBER') THEN "
                    f"EXECUTE 'REVOKE {_ident(group)} FROM {_ident(member)} CASCADE'; "
                    f"END IF; END $$"
                )


def database_statements(roles: Roles, database: str) -> Iterator[str]:
    """Hand the database to the owner (run in the ``postgres`` database)."""
    yield f"ALTER DATABASE {_ident(database)} OWNER TO {_ident(roles.owner)}"
    yield f"REVOKE CONNECT, CREATE, TEMPORARY ON DATABASE {_ident(database)} FROM PUBLIC"
    yield f"GRANT CONNECT ON DATABASE {_ident(database)} TO {_ident(roles.app)}"
    yield f"GRANT CONNECT ON DATABASE {_ident(database)} TO {_ident(roles.platform)}"


def inside_statements(roles: Roles) -> Iterator[str]:
    """Inside the database: whatever the application role owns goes to the owner."""
    yield f"REASSIGN OWNED BY {_ident(roles.app)} TO {_ident(roles.owner)}"
    yield f"REASSIGN OWNED BY {_ident(roles.platform)} TO {_ident(roles.owner)}"
    yield f"ALTER SCHEMA public OWNER TO {_ident(roles.owner)}"
    yield "REVOKE CREATE ON SCHEMA public FROM PUBLIC"
    yield f"GRANT USAGE ON SCHEMA public TO {_ident(roles.app)}, {_ident(roles.platform)}"


def setup(superuser_url: str, roles: Roles, database: str) -> None:
    """Create the roles and the database (when missing) and hand it to the owner."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(superuser_url, autocommit=True) as admin:
        for statement in cluster_statements(roles):
            admin.execute(statement)
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        if exists.fetchone() is None:
            admin.execute(f"CREATE DATABASE {_ident(database)} OWNER {_ident(roles.owner)}")
        for statement in database_statements(roles, database):
            admin.execute(statement)
        # Test databases the application role created under the old layout: the owner must
        # be able to drop them.
        stale = admin.execute(
            "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
            "WHERE r.rolname IN (%s, %s) AND datname LIKE %s",
            [roles.app, roles.platform, f"test\\_{database}%"],
        ).fetchall()
        for (name,) in stale:
            admin.execute(f"ALTER DATABASE {_ident(name)} OWNER TO {_ident(roles.owner)}")
    with psycopg.connect(make_conninfo(superuser_url, dbname=database), autocommit=True) as db:
        for statement in inside_statements(roles):
            db.execute(statement)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", required=True, help="the application role's name")
    parser.add_argument("--database", required=True)
    parser.add_argument("--superuser-url", help="a role that may create roles")
    parser.add_argument("--print", action="store_true", help="print the SQL instead")
    args = parser.parse_args(argv)
    roles = Roles(args.app)
    if args.print or not args.superuser_url:
        print("-- in the postgres database, as a role that may create roles:")
        print(f"-- (first, if it is new: CREATE DATABASE {_ident(args.database)};)")
        for statement in [*cluster_statements(roles), *database_statements(roles, args.database)]:
            print(f"{statement};")
        print(f"-- then connected to {args.database}:")
        for statement in inside_statements(roles):
            print(f"{statement};")
        return
    setup(args.superuser_url, roles, args.database)
    print(f"roles {roles.app}, {roles.owner}, {roles.platform}; database {args.database}")


if __name__ == "__main__":
    main()
