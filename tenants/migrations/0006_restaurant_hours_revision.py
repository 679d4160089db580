from django.db import migrations, models

# Every statement that writes or deletes rows in either hours table takes each restaurant it
# touched to the next value of a sequence (never reused, even by a rolled-back change), once
# per statement however many rows it wrote, and the restaurant row refuses to take it back: a
# save of a stale instance writes an older revision, which the guard keeps at the newer one.
# PostgreSQL allows transition tables only on single-event triggers: three per table.
HOURS_TABLES = ("tenants_openinghours", "tenants_openingexception")

FUNCTION = """
CREATE SEQUENCE tenants_hours_revision_seq;

CREATE FUNCTION tenants_hours_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE tenants_restaurant SET hours_revision = nextval('tenants_hours_revision_seq')
         WHERE id IN (SELECT restaurant_id FROM changed_new);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE tenants_restaurant SET hours_revision = nextval('tenants_hours_revision_seq')
         WHERE id IN (SELECT restaurant_id FROM changed_old);
    ELSE
        UPDATE tenants_restaurant SET hours_revision = nextval('tenants_hours_revision_seq')
         WHERE id IN (SELECT restaurant_id FROM changed_new
                      UNION SELECT restaurant_id FROM changed_old);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION tenants_hours_revision_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.hours_revision < OLD.hours_revision THEN
        NEW.hours_revision := OLD.hours_revision;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tenants_restaurant_hours_revision_forward
    BEFORE UPDATE ON tenants_restaurant
    FOR EACH ROW EXECUTE FUNCTION tenants_hours_revision_forward();
"""

TRIGGERS = "".join(
    f"""
CREATE TRIGGER {table}_revision_insert AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION tenants_hours_changed();
CREATE TRIGGER {table}_revision_update AFTER UPDATE ON {table}
    REFERENCING NEW TABLE AS changed_new OLD TABLE AS changed_old
    FOR EACH STATEMENT EXECUTE FUNCTION tenants_hours_changed();
CREATE TRIGGER {table}_revision_delete AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS changed_old
    FOR EACH STATEMENT EXECUTE FUNCTION tenants_hours_changed();
"""
    for table in HOURS_TABLES
)

FORWARD = FUNCTION + TRIGGERS

BACKWARD = (
    "".join(
        f"""
DROP TRIGGER {table}_revision_insert ON {table};
DROP TRIGGER {table}_revision_update ON {table};
DROP TRIGGER {table}_revision_delete ON {table};
"""
        for table in HOURS_TABLES
    )
    + """
DROP TRIGGER tenants_restaurant_hours_revision_forward ON tenants_restaurant;
DROP FUNCTION tenants_hours_revision_forward();
DROP FUNCTION tenants_hours_changed();
DROP SEQUENCE tenants_hours_revision_seq;
"""
)


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0005_account_deletion"),
    ]

    operations = [
        migrations.AddField(
            model_name="restaurant",
            name="hours_revision",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
