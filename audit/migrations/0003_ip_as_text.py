"""Store the client IP as the exact text that was hashed (inet rewrites some forms)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only")]

    operations = [
        migrations.SeparateDatabaseAndState(
            # ALTER TABLE rewrites no rows through triggers: the log stays append-only.
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE audit_auditevent ALTER COLUMN ip TYPE varchar(45) "
                    "USING COALESCE(host(ip), ''), ALTER COLUMN ip SET NOT NULL",
                    "ALTER TABLE audit_auditevent ALTER COLUMN ip DROP NOT NULL, "
                    "ALTER COLUMN ip TYPE inet USING NULLIF(ip, '')::inet",
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="ip",
                    field=models.CharField(blank=True, max_length=45),
                )
            ],
        )
    ]
