"""Wall 3: PostgreSQL row-level security on every tenant table, as a non-superuser."""

import pytest
from django.apps import apps
from django.db import connection

from nordkestrel.dbrouting import current_connection
from tenants.context import tenant_bypass, tenant_context
from tenants.models import TenantModel

pytestmark = pytest.mark.django_db


# Tables that name a restaurant but are not TenantModels (their restaurant is not a required
# foreign key): Stripe's account → restaurant routing, the webhook inbox (an event is stored
# before we know whose it is) and the record of an account purge, which outlives the
# restaurant's data. They have forced row-level security like every other table.
PLATFORM_TABLES = {
    "apikeys_apikeyroute",
    "payments_accountroute",
    "payments_webhookevent",
    "tenants_deletionrecord",
}


def test_platform_tables_are_not_tenant_models():
    tenant_tables = {m._meta.db_table for m in apps.get_models() if issubclass(m, TenantModel)}
    assert not PLATFORM_TABLES & tenant_tables


def tenant_tables_in_catalogue():
    """Every table with a restaurant_id column, from the catalogue."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   EXISTS (SELECT 1 FROM pg_policies p
                           WHERE p.schemaname = n.nspname AND p.tablename = c.relname)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid
            WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
              AND a.attname = 'restaurant_id' AND NOT a.attisdropped
            """
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


def test_every_tenant_table_has_forced_rls_and_a_policy():
    tables = tenant_tables_in_catalogue()
    assert tables, "tenant tables exist"
    lacking = {name: flags for name, flags in tables.items() if flags != (True, True, True)}
    assert lacking == {}, f"tables without ENABLE+FORCE RLS and a policy: {lacking}"


def test_every_policy_trusts_the_role_and_reads_no_setting_but_the_restaurant():
    """No policy may read a switch the application role could set: crossing restaurants is a
    test of the role alone, naming the platform role and the owner, never the application
    role."""
    from django.conf import settings

    from nordkestrel.dbgrants import crossing_condition, crossing_roles

    assert settings.DATABASE_ROLES["default"] not in crossing_roles()
    assert set(crossing_roles()) == {
        settings.DATABASE_ROLES["platform"],
        settings.DATABASE_ROLES["owner"],
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, policyname, cmd, coalesce(qual, ''), coalesce(with_check, '') "
            "FROM pg_policies WHERE schemaname = current_schema()"
        )
        policies = cursor.fetchall()
    assert set(tenant_tables_in_catalogue()) <= {row[0] for row in policies}
    for table, name, command, qual, check in policies:
        if name == "public_read":
            assert (command, qual, check) == ("SELECT", "true", ""), table
            continue
        for expression in (qual, check):
            assert crossing_condition() in expression, (table, expression)
            assert "nordkestrel_platform()" not in expression, (table, expression)
            settings_read = expression.count("current_setting(")
            assert settings_read == expression.count("current_setting('app.restaurant_id'")
            assert settings_read == 1, (table, expression)


# Tables a new feature brought, named here so that losing one (or its forced row-level
# security) is a failure even if the catalogue walk above were to miss it.
WEBHOOK_TABLES = {"webhooks_endpoint", "webhooks_delivery", "webhooks_attempt"}


def test_the_webhook_tables_are_tenant_tables_with_forced_rls():
    tables = tenant_tables_in_catalogue()
    assert {name: tables.get(name) for name in WEBHOOK_TABLES} == dict.fromkeys(
        WEBHOOK_TABLES, (True, True, True)
    )
    assert not WEBHOOK_TABLES & PLATFORM_TABLES, "each is an ordinary tenant table"


def test_raw_selects_of_the_webhook_tables_see_only_their_restaurant(roster, restaurants):
    from tests.security.objects import make_object

    for restaurant in restaurants:
        make_object("webhook_delivery", restaurant)  # an endpoint, a delivery, an attempt

    def seen(table):
        with current_connection().cursor() as cursor:
            cursor.execute(f"SELECT DISTINCT restaurant_id FROM {table}")  # noqa: S608
            return {row[0] for row in cursor.fetchall()}

    for table in sorted(WEBHOOK_TABLES):
        assert seen(table) == set(), f"{table}: no rows without a tenant"
        for restaurant in restaurants:
            with tenant_context(restaurant):
                assert seen(table) == {restaurant.pk}, table


def test_every_tenant_model_is_in_the_catalogue():
    models = {m._meta.db_table for m in apps.get_models() if issubclass(m, TenantModel)}
    assert models <= set(tenant_tables_in_catalogue())


def test_connection_role_cannot_bypass_rls():
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)


def raw_staff_restaurants():
    with current_connection().cursor() as cursor:
        cursor.execute("SELECT restaurant_id FROM staff_staffmember")
        return {row[0] for row in cursor.fetchall()}


def test_raw_select_sees_nothing_without_a_tenant(roster):
    assert raw_staff_restaurants() == set()


def test_raw_select_sees_only_its_own_rows_with_a_tenant(roster, restaurants):
    ours, theirs = restaurants
    with tenant_context(ours):
        assert raw_staff_restaurants() == {ours.pk}
    with tenant_context(theirs):
        assert raw_staff_restaurants() == {theirs.pk}
    assert raw_staff_restaurants() == set(), "the setting does not outlive the context"


def test_raw_insert_into_another_restaurant_is_refused(roster, restaurants):
    ours, theirs = restaurants
    with (
        pytest.raises(Exception, match="row-level security"),
        tenant_context(ours),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO staff_staffmember (restaurant_id, email, name, role, active, "
            "created_at, updated_at) VALUES (%s, 'x@y.example.com', '', 'owner', true, "
            "now(), now())",
            [theirs.pk],
        )


def test_raw_update_cannot_touch_other_rows(roster, restaurants):
    ours, theirs = restaurants
    with tenant_context(ours), connection.cursor() as cursor:
        cursor.execute("UPDATE staff_staffmember SET name = 'changed'")
        assert cursor.rowcount == len([k for k in roster if k[0] == "ours"])
    with tenant_context(theirs), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM staff_staffmember WHERE name = 'changed'")
        assert cursor.fetchone() == (0,)


@pytest.mark.django_db(transaction=True)
def test_bypass_sees_every_restaurant(roster, restaurants):
    """As the platform role, on its own connection (so: what is committed)."""
    with tenant_bypass():
        assert raw_staff_restaurants() == {r.pk for r in restaurants}


def test_tenant_indexes_and_unique_constraints_lead_with_restaurant():
    """Citus-ready: every unique index on a tenant table starts with restaurant_id."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, i.relname, a.attname
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
            WHERE x.indisunique AND NOT x.indisprimary AND t.relname = ANY(%s)
            """,
            # The platform tables' unique keys are Stripe's global ids.
            [list(set(tenant_tables_in_catalogue()) - PLATFORM_TABLES)],
        )
        rows = cursor.fetchall()
    assert rows, "tenant tables have unique constraints"
    assert [r for r in rows if r[2] != "restaurant_id"] == []


def test_database_check_accepts_the_application_role():
    from tenants.checks import check_database_role

    assert check_database_role(databases=["default"]) == []


@pytest.mark.django_db(transaction=True)
def test_database_check_refuses_a_superuser_connection(reconnect_as):
    from tenants.checks import check_database_role

    with reconnect_as(USER="postgres"):
        errors = check_database_role(databases=["default"])
    assert [e.id for e in errors] == ["tenants.E004"]


def test_only_the_published_storefront_state_is_readable_by_everyone():
    """A public-read policy is a deliberate exception; a new one must be listed here."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_policies WHERE schemaname = current_schema() "
            "AND policyname = 'public_read'"
        )
        public = {row[0] for row in cursor.fetchall()}
    assert public == {"menus_storefrontmenustate"}
