"""The audit tables are append-only in the database itself.

UPDATE and TRUNCATE always fail. DELETE fails too, except for events past retention while
the prune function has set ``app.audit_prune`` in its transaction. The test suite's flush
between tests may TRUNCATE, but only in a database named ``test_*`` and a transaction that
set ``app.audit_allow_truncate`` (tests/conftest.py does so for Django's flush only).
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW' AND TG_TABLE_NAME = 'audit_auditevent' THEN
        IF current_setting('app.audit_prune', true) = 'on'
           AND OLD.occurred_at < now() - interval '365 days' THEN
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

-- Statement-level, so an UPDATE fails even when it matches no row; event DELETEs are
-- row-level, so the prune exception can look at each row's age.
CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_event_delete BEFORE DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_anchor_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON audit_auditanchor FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
"""

BACKWARD = r"""
DROP TRIGGER audit_anchor_append_only ON audit_auditanchor;
DROP TRIGGER audit_event_delete ON audit_auditevent;
DROP TRIGGER audit_event_no_update ON audit_auditevent;
DROP FUNCTION audit_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
