"""The policies trust roles, not settings: ``app.tenant_bypass`` no longer lets anyone across
restaurants; ``nordkestrel_platform()`` (true only for the platform role and the owner) does.
The deletion records get row-level security of their own."""

from django.db import migrations

from nordkestrel import dbgrants
from tenants.rls import tenant_condition


def forward(apps, schema_editor):
    connection = schema_editor.connection
    dbgrants.apply(connection)
    condition = tenant_condition()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_policies "
            "WHERE policyname = 'tenant_isolation' ORDER BY tablename"
        )
        tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            cursor.execute(
                f"ALTER POLICY tenant_isolation ON {table} USING {condition} WITH CHECK {condition}"
            )
        cursor.execute("ALTER TABLE tenants_deletionrecord ENABLE ROW LEVEL SECURITY")
        cursor.execute("ALTER TABLE tenants_deletionrecord FORCE ROW LEVEL SECURITY")
        cursor.execute("DROP POLICY IF EXISTS tenant_isolation ON tenants_deletionrecord")
        cursor.execute(
            "CREATE POLICY tenant_isolation ON tenants_deletionrecord "
            f"USING {condition} WITH CHECK {condition}"
        )


class Migration(migrations.Migration):
    dependencies = [("tenants", "0006_restaurant_hours_revision")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
