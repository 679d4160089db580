"""The restaurant switcher's one crossing: where a signed-in person is active staff.

``nordkestrel_memberships(clerk_user_id)`` runs as the owner (a role the policies let across)
and answers for one person only: the restaurants' ids, slugs and names and the role there.
The dashboard calls it on the application role's connection, inside the request's own
transaction, instead of crossing restaurants itself."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION nordkestrel_memberships(person text)
RETURNS TABLE (restaurant_id bigint, slug text, name text, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT m.restaurant_id, r.slug::text, r.name::text, m.role::text
      FROM staff_staffmember m JOIN tenants_restaurant r ON r.id = m.restaurant_id
     WHERE m.clerk_user_id = person AND m.active
     ORDER BY r.name, m.restaurant_id
$$
"""


class Migration(migrations.Migration):
    dependencies = [("staff", "0001_initial"), ("tenants", "0007_policies_trust_roles")]

    operations = [
        migrations.RunSQL(FORWARD, "DROP FUNCTION IF EXISTS nordkestrel_memberships(text)")
    ]
