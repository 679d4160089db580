"""What the owner grants after every migration, and the function the policies trust.

Run by the owner (``post_migrate``, and the migration that made the policies trust roles):

- the crossing test, true only for the platform role (and the owner, whose data migrations
  cross restaurants): ``CURRENT_USER = ANY (<their names>)``, written into every tenant
  policy (brought up to date here when the roles' names change) and into the function
  ``nordkestrel_platform()`` that the audit trigger reads. It reads no setting, so no
  statement the application role may run makes it true; only the owner may alter a policy
  or replace the function.
- ``SELECT, INSERT, UPDATE, DELETE`` on every table, and the use of every sequence, for the
  application and platform roles; on the audit log's tables the application role may only
  read and append, and the platform role may also delete (pruning, which the trigger allows
  only past retention).
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

PLATFORM_FUNCTION = "nordkestrel_platform"
AUDIT_TABLES = ("audit_auditevent", "audit_auditanchor")
# The functions that answer one question across restaurants, as the owner (SECURITY DEFINER):
# only the application and platform roles may call them, not every role of the cluster.
DEFINER_FUNCTIONS = (
    "nordkestrel_memberships(text)",
    "nordkestrel_account_restaurant(text)",
    "nordkestrel_webhook_restaurant(text)",
    "nordkestrel_api_key(text)",
)


def _literal(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def crossing_roles() -> list[str]:
    """The roles the policies let across restaurants: the platform role and the owner,
    never the application role (a configuration that names it as either crosses nothing
    more: ``check --deploy`` and /readyz refuse it)."""
    roles = settings.DATABASE_ROLES
    app = roles.get("default", "")
    return sorted({roles.get("platform", ""), roles.get("owner", "")} - {"", app}) or [""]


def crossing_condition() -> str:
    """The policies' own test of the role: the same as ``nordkestrel_platform()``, written
    into each policy so that planning a statement does not expand a function each time
    (bench/RESULTS.md, "The database wall")."""
    names = ",".join(crossing_roles())
    return f"(CURRENT_USER = ANY ('{{{names}}}'::name[]))"


# A policy's crossing test as PostgreSQL shows it back, in either form it has had.
_CROSSING = re.compile(
    r"nordkestrel_platform\(\)|\(?CURRENT_USER = ANY \('\{[^}]*\}'::name\[\]\)\)?"
)


def policy_statements(policies: list[tuple[str, str, str]]) -> list[str]:
    """ALTER POLICY for each (table, qual, with_check) whose crossing test names other
    roles than the current ones (the roles were renamed, or the policy predates this)."""
    wanted = crossing_condition()
    statements = []
    for table, qual, check in policies:
        new_qual, new_check = (_CROSSING.sub(wanted, text) for text in (qual, check))
        if (new_qual, new_check) != (qual, check):
            statements.append(
                f"ALTER POLICY tenant_isolation ON {_ident(table)} "
                f"USING ({new_qual}) WITH CHECK ({new_check})"
            )
    return statements


def platform_function_sql() -> str:
    names = ", ".join(_literal(name) for name in crossing_roles())
    return (
        f"CREATE OR REPLACE FUNCTION {PLATFORM_FUNCTION}() RETURNS boolean "
        f"LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT current_user IN ({names}) $$"
    )


def grant_statements(
    audit_tables: tuple[str, ...] = AUDIT_TABLES, functions: tuple[str, ...] = DEFINER_FUNCTIONS
) -> list[str]:
    roles = settings.DATABASE_ROLES
    app, platform = roles.get("default", ""), roles.get("platform", "")
    grantees = [_ident(name) for name in dict.fromkeys([app, platform]) if name]
    if not grantees:
        return []
    everyone = ", ".join(grantees)
    statements = [
        f"GRANT USAGE ON SCHEMA public TO {everyone}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {everyone}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {everyone}",
        f"GRANT EXECUTE ON FUNCTION {PLATFORM_FUNCTION}() TO {everyone}",
    ]
    for function in functions:
        statements.append(f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC")
        statements.append(f"GRANT EXECUTE ON FUNCTION {function} TO {everyone}")
    for table in audit_tables:
        statements.append(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {everyone}")
        if platform and platform != app:
            statements.append(f"GRANT DELETE ON {table} TO {_ident(platform)}")
    return statements


def apply(connection: Any) -> None:
    """Re-create the function, bring every tenant policy's crossing test up to date, and
    reapply the grants (idempotent)."""
    owner = connection.settings_dict.get("USER")
    with connection.cursor() as cursor:
        cursor.execute(platform_function_sql())
        cursor.execute(
            "SELECT tablename, qual, with_check FROM pg_policies "
            "WHERE schemaname = current_schema() AND policyname = 'tenant_isolation'"
        )
        for statement in policy_statements(cursor.fetchall()):
            cursor.execute(statement)
        if owner and owner == settings.DATABASE_ROLES.get("default"):
            return  # one role for everything (a bare DATABASE_URL): nothing to grant
        cursor.execute(
            "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NOT NULL",
            [list(AUDIT_TABLES)],
        )
        existing = tuple(row[0] for row in cursor.fetchall())
        cursor.execute(
            "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regprocedure(name) IS NOT NULL",
            [list(DEFINER_FUNCTIONS)],
        )
        functions = tuple(row[0] for row in cursor.fetchall())
        for statement in grant_statements(existing, functions):
            cursor.execute(statement)


def after_migrate(using: str = "default", **kwargs: Any) -> None:
    """After ``migrate`` as the owner. Django's ``flush`` sends the same signal, as whichever
    role flushed: only the owner has anything to apply."""
    from django.db import connections

    connection = connections[using]
    if connection.settings_dict.get("USER") == settings.DATABASE_ROLES.get("owner"):
        apply(connection)


# Why the connected role must not serve requests (NULL: it is safe). The application role may
# not be a superuser, bypass row-level security, own the database or anything in it (an owner
# may alter or disable what binds it), be a member of another role (it could SET ROLE), or
# create roles or databases.
UNSAFE_ROLE_SQL = """
SELECT CASE
    WHEN r.rolsuper THEN 'is a superuser'
    WHEN r.rolbypassrls THEN 'bypasses row-level security'
    WHEN EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid)
        THEN 'is a member of another role'
    WHEN EXISTS (SELECT 1 FROM pg_database d
                  WHERE d.datname = current_database() AND d.datdba = r.oid)
        THEN 'owns the database'
    WHEN EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspowner = r.oid
                    AND left(n.nspname, 3) <> 'pg_' AND n.nspname <> 'information_schema')
      OR EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid
                    AND c.relnamespace = 'public'::regnamespace)
      OR EXISTS (SELECT 1 FROM pg_proc p WHERE p.proowner = r.oid
                    AND p.pronamespace = 'public'::regnamespace)
        THEN 'owns tables, functions or schemas'
    WHEN r.rolcreaterole OR r.rolcreatedb THEN 'may create roles or databases'
END
FROM pg_roles r WHERE r.rolname = current_user
"""
