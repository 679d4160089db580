"""Retention is 12 calendar months, measured by the database's clock (as pruning does)."""

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW' AND TG_TABLE_NAME = 'audit_auditevent' THEN
        IF current_setting('app.audit_prune', true) = 'on'
           AND OLD.occurred_at < now() - interval 'RETENTION' THEN
            RETURN OLD;
        END IF;
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        IF current_setting('app.audit_allow_truncate', true) = 'on'
           AND current_database() LIKE 'test\_%' THEN
            RETURN NULL;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_ip_as_text")]

    operations = [
        migrations.RunSQL(
            FUNCTION.replace("RETENTION", "12 months"),
            FUNCTION.replace("RETENTION", "365 days"),
        ),
    ]
