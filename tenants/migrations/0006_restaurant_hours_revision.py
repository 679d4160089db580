from django.db import migrations, models

# Every row written or deleted in either hours table takes the restaurant's revision to the
# next value of a sequence (never reused, even by a rolled-back change), and the restaurant
# row refuses to take it back: a save of a stale instance writes an older revision, which the
# guard keeps at the newer one.
FORWARD = """
CREATE SEQUENCE tenants_hours_revision_seq;

CREATE FUNCTION tenants_hours_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN
        UPDATE tenants_restaurant SET hours_revision = nextval('tenants_hours_revision_seq')
         WHERE id = NEW.restaurant_id;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        UPDATE tenants_restaurant SET hours_revision = nextval('tenants_hours_revision_seq')
         WHERE id = OLD.restaurant_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_openinghours_revision
    AFTER INSERT OR UPDATE OR DELETE ON tenants_openinghours
    FOR EACH ROW EXECUTE FUNCTION tenants_hours_changed();
CREATE TRIGGER tenants_openingexception_revision
    AFTER INSERT OR UPDATE OR DELETE ON tenants_openingexception
    FOR EACH ROW EXECUTE FUNCTION tenants_hours_changed();

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

BACKWARD = """
DROP TRIGGER tenants_restaurant_hours_revision_forward ON tenants_restaurant;
DROP FUNCTION tenants_hours_revision_forward();
DROP TRIGGER tenants_openingexception_revision ON tenants_openingexception;
DROP TRIGGER tenants_openinghours_revision ON tenants_openinghours;
DROP FUNCTION tenants_hours_changed();
DROP SEQUENCE tenants_hours_revision_seq;
"""


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
