# ruff: noqa: S608  (table names come from the catalogue, values are parameters)
"""The database wall, tried as the application role through its real connection.

Every statement that could lower row-level security fails or changes nothing: the role owns
nothing, belongs to no other role, and the policies trust roles, not settings. Only the
platform role crosses restaurants, and it may neither alter the wall nor rewrite the audit
log. (nordkestrel/dbroles.py, nordkestrel/dbgrants.py; README, "Database roles".)
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction

from audit import registry
from audit import services as audit
from audit.models import AuditEvent
from nordkestrel.dbrouting import PLATFORM
from tenants.context import platform_context, tenant_bypass, tenant_context
from tests.factories import make_restaurant

ROLES = settings.DATABASE_ROLES
# Every custom setting a policy, trigger or function of this schema ever read, but the
# restaurant itself (which selects one restaurant, by design).
SWITCHES = ["app.tenant_bypass", "app.audit_prune", "app.audit_allow_truncate"]


def switch(cursor, value: str = "on", *, local: bool = True) -> None:
    """Set every switch in SWITCHES to ``value`` for the transaction (or the session)."""
    for name in SWITCHES:
        cursor.execute("SELECT set_config(%s, %s, %s)", [name, value, local])


def public_tables(cursor) -> set[str]:
    """Tables every visitor may read (the published storefront state: test_rls lists them)."""
    cursor.execute("SELECT tablename FROM pg_policies WHERE policyname = 'public_read'")
    return {row[0] for row in cursor.fetchall()}


def tenant_tables(cursor) -> list[str]:
    cursor.execute(
        "SELECT table_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND column_name = 'restaurant_id' ORDER BY 1"
    )
    return [row[0] for row in cursor.fetchall()]


INSUFFICIENT_PRIVILEGE = "42501"


def refused(statement: str, params=None, *, using: str = "default") -> bool:
    """Run one statement in a savepoint; True when the database refused it for want of a
    privilege (SQLSTATE 42501: not the owner, no grant, a row-level policy, the audit
    trigger). Any other error (a typo, a missing object) fails the test instead."""
    try:
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            cursor.execute(statement, params)
    except DatabaseError as error:
        sqlstate = getattr(error.__cause__, "sqlstate", None)
        if sqlstate != INSUFFICIENT_PRIVILEGE:
            pytest.fail(f"{statement}: failed otherwise than refused: {sqlstate} {error}")
        return True
    return False


@pytest.fixture
def seeded(transactional_db):
    """Both demo restaurants with a menu, staff, hours and a promotion, committed, plus a
    row of each in the tables the demo leaves empty that the catalogue names below."""
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)
    from tenants.models import Restaurant

    first, second = Restaurant.objects.order_by("pk")[:2]
    return first, second


@pytest.mark.django_db
def test_the_application_role_is_the_one_the_roles_script_made():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, session_user")
        current, session = cursor.fetchone()
    assert current == session == ROLES["default"]
    assert ROLES["default"] not in {ROLES["owner"], ROLES["platform"]}


@pytest.mark.django_db
def test_it_owns_nothing_and_may_alter_no_table():
    with connection.cursor() as cursor:
        tables = tenant_tables(cursor)
    assert len(tables) > 20
    for table in [*tables, "audit_auditevent"]:
        for statement in (
            f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} DISABLE TRIGGER ALL",
            f"DROP POLICY tenant_isolation ON {table}",
            f"CREATE POLICY everything ON {table} USING (true)",
            f"TRUNCATE {table} CASCADE",
        ):
            assert refused(statement), statement


@pytest.mark.django_db
def test_it_may_not_replace_or_shadow_what_the_policies_trust():
    for statement in (
        "CREATE OR REPLACE FUNCTION nordkestrel_platform() RETURNS boolean "
        "LANGUAGE sql AS $$ SELECT true $$",
        "ALTER FUNCTION nordkestrel_platform() OWNER TO CURRENT_USER",
        "DROP FUNCTION nordkestrel_platform()",
        "CREATE SCHEMA shadow",
        "CREATE TABLE public.scratch (id int)",
        "ALTER TRIGGER audit_event_delete ON audit_auditevent RENAME TO gone",
    ):
        assert refused(statement), statement


@pytest.mark.django_db
def test_it_cannot_become_another_role():
    for role in (ROLES["owner"], ROLES["platform"], "postgres"):
        assert refused(f'SET ROLE "{role}"'), role
        assert refused(f'SET SESSION AUTHORIZATION "{role}"'), role


@pytest.mark.django_db
def test_the_audit_log_is_read_and_append_only_whatever_the_settings(restaurants):
    ours, _ = restaurants
    with tenant_context(ours):
        audit.record(registry.AUDIT_PRUNED, actor=audit.SCHEDULER, changes={})
    for statement in (
        "UPDATE audit_auditevent SET occurred_at = now() - interval '20 years'",
        "DELETE FROM audit_auditevent",
        "DELETE FROM audit_auditanchor",
        "TRUNCATE audit_auditevent",
    ):
        with tenant_context(ours):
            with connection.cursor() as cursor:
                switch(cursor)
            assert refused(statement), statement
    with tenant_context(ours):
        assert AuditEvent.objects.count() == 1


@pytest.mark.django_db
def test_no_other_setting_widens_what_one_restaurant_or_none_sees(roster, restaurants):
    ours, _ = restaurants
    with tenant_context(ours), connection.cursor() as cursor:
        switch(cursor, local=False)
        cursor.execute("SELECT DISTINCT restaurant_id FROM staff_staffmember")
        assert {row[0] for row in cursor.fetchall()} == {ours.pk}
    # With no restaurant and every switch on: nothing at all.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM staff_staffmember")
        assert cursor.fetchone()[0] == 0
        switch(cursor, "", local=False)


@pytest.mark.django_db(transaction=True)
def test_with_one_restaurant_set_no_row_of_another_is_visible_or_writable(seeded):
    first, second = seeded
    with tenant_bypass(), connections[PLATFORM].cursor() as cursor:
        tables = tenant_tables(cursor)
        crowded = []
        for table in tables:
            cursor.execute(f"SELECT count(DISTINCT restaurant_id) FROM {table}")
            if cursor.fetchone()[0] >= 2:
                crowded.append(table)
    # Not a vacuous pass: the platform role sees both restaurants' rows in many tables.
    assert len(crowded) >= 8, crowded
    with connection.cursor() as cursor:
        public = public_tables(cursor)
    for table in tables:
        with tenant_context(first), connection.cursor() as cursor:
            switch(cursor)
            cursor.execute(f"SELECT count(*) FROM {table} WHERE restaurant_id <> %s", [first.pk])
            if table not in public:
                assert cursor.fetchone()[0] == 0, table
            if table.startswith("audit_"):
                continue
            cursor.execute(
                f"UPDATE {table} SET restaurant_id = restaurant_id WHERE restaurant_id = %s",
                [second.pk],
            )
            assert cursor.rowcount == 0, table
            cursor.execute(f"DELETE FROM {table} WHERE restaurant_id = %s", [second.pk])
            assert cursor.rowcount == 0, table
    with tenant_context(first):
        assert refused(
            "UPDATE staff_staffmember SET restaurant_id = %s WHERE restaurant_id = %s",
            [second.pk, first.pk],
        ), "moving a row to another restaurant"


@pytest.mark.django_db(transaction=True)
def test_only_the_platform_role_crosses_and_it_cannot_lower_the_wall(seeded):
    first, second = seeded
    with tenant_bypass(), connections[PLATFORM].cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == ROLES["platform"]
        cursor.execute("SELECT DISTINCT restaurant_id FROM staff_staffmember")
        assert {row[0] for row in cursor.fetchall()} == {first.pk, second.pk}
    for statement in (
        "ALTER TABLE staff_staffmember NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL",
        f'SET ROLE "{ROLES["owner"]}"',
        "UPDATE audit_auditevent SET action = 'x'",
        "TRUNCATE audit_auditevent",
        "CREATE OR REPLACE FUNCTION nordkestrel_platform() RETURNS boolean "
        "LANGUAGE sql AS $$ SELECT true $$",
    ):
        with tenant_bypass():
            assert refused(statement, using=PLATFORM), statement


@pytest.mark.django_db(transaction=True)
def test_pruning_works_only_as_the_platform_role_and_only_past_retention():
    restaurant = make_restaurant("pruned")
    with tenant_context(restaurant):
        for _ in range(3):
            audit.record(registry.AUDIT_PRUNED, actor=audit.SCHEDULER, changes={})
    # Age the first two events the only way there is: as the schema's owner (test set-up).
    from tests.conftest import owner_connection

    with owner_connection() as owner, owner.transaction():
        owner.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        owner.execute(
            "UPDATE audit_auditevent SET occurred_at = occurred_at - interval '13 months' "
            "WHERE restaurant_id = %s AND sequence <= 2",
            [restaurant.pk],
        )
        owner.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
    # The application role may not prune, not even what is past retention.
    with tenant_context(restaurant), pytest.raises(DatabaseError) as denied:
        audit.prune()
    assert getattr(denied.value.__cause__, "sqlstate", None) == INSUFFICIENT_PRIVILEGE
    # The platform role may delete only past retention, whatever it asks.
    with platform_context(restaurant):
        assert refused(
            "DELETE FROM audit_auditevent WHERE restaurant_id = %s AND sequence = 3",
            [restaurant.pk],
            using=PLATFORM,
        )
    with platform_context(restaurant):
        assert audit.prune() == 2
    with tenant_context(restaurant):
        kept = list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True))
        assert kept == [3, 4], "the third event and the pruning's own record"
        assert audit.verify_chain()[1] is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("alias", ["owner", "postgres"])
def test_check_refuses_an_owner_or_superuser_as_the_application_role(alias, reconnect_as):
    from tenants.checks import check_database_role

    user = ROLES["owner"] if alias == "owner" else "postgres"
    with reconnect_as(USER=user):
        errors = check_database_role(databases=["default"])
    assert [e.id for e in errors] == ["tenants.E004"]
    assert ("owns" in errors[0].msg) if alias == "owner" else ("superuser" in errors[0].msg)


def test_transaction_settings_do_not_outlive_their_transaction(db, restaurants):
    ours, _ = restaurants
    with tenant_context(ours), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.restaurant_id', true)")
        assert cursor.fetchone()[0] == str(ours.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(current_setting('app.restaurant_id', true), '')")
        assert cursor.fetchone()[0] == ""


def _crossings() -> set[str]:
    """Every function of the application that enters tenant_bypass() or platform_context()."""
    import ast
    from pathlib import Path

    root = Path(settings.BASE_DIR)
    found: set[str] = set()
    for path in root.glob("*/**/*.py"):
        parts = path.relative_to(root).parts
        if parts[0] in {"tests", "bench", ".venv"} or "migrations" in parts:
            continue
        module = ".".join(path.relative_to(root).with_suffix("").parts)

        def visit(node: ast.AST, scope: tuple[str, ...], module: str = module) -> None:
            for child in ast.iter_child_nodes(node):
                name = getattr(child, "name", None)
                inner = (*scope, name) if isinstance(name, str) else scope
                if isinstance(child, ast.Call):
                    called = getattr(child.func, "id", getattr(child.func, "attr", ""))
                    if called in {"tenant_bypass", "platform_context"} and scope:
                        found.add(".".join((module, *scope)))
                visit(child, inner)

        visit(ast.parse(path.read_text()), ())
    return found


def test_only_named_platform_code_crosses_restaurants():
    """A new crossing is a decision (README, "Database roles"): add it here on purpose."""
    assert _crossings() == {
        "apikeys.jobs.warn_expiring",
        "audit.services.prune_every_restaurant",
        "dashboard.devauth.dev_sign_in",
        "events.periodic.redeliver_events",
        "exports.services.exports_expire",
        "payments.inbox.retry_waiting",
        "restaurants.management.commands.deletion_records.Command.handle",
        "restaurants.purge.follow_up_pending",
        "staff.management.commands.dev_token.Command.handle",
        # Outbound webhooks, never on a request path: the sender (manage.py run_webhooks)
        # leases due deliveries of every restaurant; the periodic jobs disable failing
        # endpoints and prune the delivery log.
        "webhooks.sender.claim_due",
        "webhooks.health.check_failing",
        "webhooks.periodic.prune_log",
    }


@pytest.mark.django_db
def test_each_platform_access_is_logged_with_the_code_that_asked(caplog):
    with caplog.at_level("INFO", logger="tenants.context"), tenant_bypass():
        pass
    asked = f"{__name__}.test_each_platform_access_is_logged_with_the_code_that_asked"
    assert [getattr(record, "caller", None) for record in caplog.records] == [asked]
    assert caplog.records[0].getMessage() == f"Platform access by {asked}"
