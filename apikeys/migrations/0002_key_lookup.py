"""Row-level security on the key routes, and an API key's one crossing.

- ``apikeys_apikeyroute``: a restaurant sees (and writes) its own routes; only the platform
  role and the owner see every route.
- ``nordkestrel_api_key(digest)`` runs as the owner (a role the policies let across) and
  answers for one valid key only, found by its route (the digest of its current secret or,
  during a roll's overlap, of its previous one): a revoked or expired key, or a previous
  secret past its overlap, is not found, exactly like a key that never existed. The request path calls it on the application
  role's connection before it knows the restaurant, instead of crossing restaurants itself.
"""

from django.db import migrations

from tenants.rls import tenant_condition

CONDITION = tenant_condition()

FORWARD = [
    "ALTER TABLE apikeys_apikeyroute ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE apikeys_apikeyroute FORCE ROW LEVEL SECURITY",
    "CREATE POLICY tenant_isolation ON apikeys_apikeyroute "
    f"USING {CONDITION} WITH CHECK {CONDITION}",
    """
CREATE OR REPLACE FUNCTION nordkestrel_api_key(text)
RETURNS TABLE (
    key_id bigint, restaurant_id bigint, member_id bigint, name text, last4 text, grants jsonb,
    expires_at timestamptz, revoked_at timestamptz, previous boolean,
    previous_expires_at timestamptz, allowed_ips jsonb, rate_limit integer
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT k.id, k.restaurant_id, k.created_by_id, k.name::text, k.last4::text, k.grants,
           k.expires_at, k.revoked_at, k.secret_hash <> $1, k.previous_expires_at,
           k.allowed_ips, s.rate_limit_per_minute::integer
      FROM apikeys_apikeyroute r
      JOIN apikeys_apikey k ON k.id = r.key_id AND k.restaurant_id = r.restaurant_id
      LEFT JOIN apikeys_apikeysettings s ON s.restaurant_id = k.restaurant_id
     WHERE r.digest = $1 AND k.revoked_at IS NULL AND k.expires_at > now()
       AND (k.secret_hash = $1 OR (k.previous_hash = $1 AND k.previous_expires_at > now()))
$$
""",
]

BACKWARD = [
    "DROP FUNCTION IF EXISTS nordkestrel_api_key(text)",
    "DROP POLICY IF EXISTS tenant_isolation ON apikeys_apikeyroute",
    "ALTER TABLE apikeys_apikeyroute NO FORCE ROW LEVEL SECURITY",
    "ALTER TABLE apikeys_apikeyroute DISABLE ROW LEVEL SECURITY",
]


class Migration(migrations.Migration):
    dependencies = [("apikeys", "0001_initial"), ("tenants", "0008_policies_name_the_roles")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
