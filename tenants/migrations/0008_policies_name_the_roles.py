"""Each tenant policy names the crossing roles itself (``CURRENT_USER = ANY (...)``) instead
of calling ``nordkestrel_platform()``: the same test, without expanding a function into the
plan of every statement (bench/RESULTS.md, "The database wall"). The owner's grants after
every migration keep the names current (nordkestrel/dbgrants.py)."""

from django.db import migrations

from nordkestrel import dbgrants


def forward(apps, schema_editor):
    dbgrants.apply(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0007_policies_trust_roles"),
        ("payments", "0004_webhook_rls"),
    ]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
