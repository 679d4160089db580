"""Pruning trusts the role, not a setting: only the platform role (``nordkestrel_platform()``)
may delete, and only events past retention. Neither the application role nor the platform
role may update or truncate the log (nordkestrel/dbgrants.py: they have no such privilege);
only the test suite's flush, as the owner of a test_* database, may truncate."""

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW' AND TG_TABLE_NAME = 'audit_auditevent' THEN
        IF nordkestrel_platform() AND OLD.occurred_at < now() - interval '12 months' THEN
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

PREVIOUS = FUNCTION.replace(
    "nordkestrel_platform()", "current_setting('app.audit_prune', true) = 'on'"
)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_retention_in_months"), ("tenants", "0007_policies_trust_roles")]

    operations = [migrations.RunSQL(FUNCTION, PREVIOUS)]
