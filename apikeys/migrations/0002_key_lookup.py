"""An API key's one crossing: which key (and so which restaurant) a secret's digest is.

``nordkestrel_api_key(digest)`` runs as the owner (a role the policies let across) and
answers for one key only, found by its unique SHA-256 (current or, during a roll's overlap,
previous). The request path calls it on the application role's connection before it knows
the restaurant, instead of crossing restaurants itself."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION nordkestrel_api_key(digest text)
RETURNS TABLE (
    key_id bigint, restaurant_id bigint, member_id bigint, name text, last4 text, grants jsonb,
    expires_at timestamptz, revoked_at timestamptz, previous boolean,
    previous_expires_at timestamptz, allowed_ips jsonb, rate_limit integer
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT k.id, k.restaurant_id, k.created_by_id, k.name::text, k.last4::text, k.grants,
           k.expires_at, k.revoked_at, k.secret_hash <> digest, k.previous_expires_at,
           k.allowed_ips, s.rate_limit_per_minute::integer
      FROM apikeys_apikey k
      LEFT JOIN apikeys_apikeysettings s ON s.restaurant_id = k.restaurant_id
     WHERE k.secret_hash = digest OR k.previous_hash = digest
     LIMIT 1
$$
"""


class Migration(migrations.Migration):
    dependencies = [("apikeys", "0001_initial"), ("tenants", "0008_policies_name_the_roles")]

    operations = [migrations.RunSQL(FORWARD, "DROP FUNCTION IF EXISTS nordkestrel_api_key(text)")]
