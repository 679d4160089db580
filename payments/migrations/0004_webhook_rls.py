"""Row-level security on the two webhook tables, and the two lookups that route an event.

- ``payments_accountroute``: a restaurant sees its own routes; only the platform role sees
  every route.
- ``payments_webhookevent``: a routed event is its restaurant's alone; an event not routed
  yet (``restaurant_id`` NULL) belongs to no restaurant and is visible to the receiver, which
  has none to act for (README, "Database roles").
- Routing crosses restaurants by design, in two named functions that answer one question
  each and run as the owner (a role ``nordkestrel_platform()`` lets across):
  ``nordkestrel_account_restaurant(account)``, the restaurant of a connected account, and
  ``nordkestrel_webhook_restaurant(event)``, the restaurant a stored event was routed to.
"""

from django.db import migrations

from tenants.rls import tenant_condition

CONDITION = tenant_condition()
UNROUTED = f"(restaurant_id IS NULL OR {CONDITION})"

FORWARD = [
    "ALTER TABLE payments_accountroute ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE payments_accountroute FORCE ROW LEVEL SECURITY",
    "CREATE POLICY tenant_isolation ON payments_accountroute "
    f"USING {CONDITION} WITH CHECK {CONDITION}",
    "ALTER TABLE payments_webhookevent ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE payments_webhookevent FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY tenant_isolation ON payments_webhookevent USING {UNROUTED} "
    f"WITH CHECK {UNROUTED}",
    """CREATE OR REPLACE FUNCTION nordkestrel_account_restaurant(account text) RETURNS bigint
       LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
       SELECT restaurant_id FROM payments_accountroute WHERE account_id = account $$""",
    """CREATE OR REPLACE FUNCTION nordkestrel_webhook_restaurant(event text) RETURNS bigint
       LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
       SELECT restaurant_id FROM payments_webhookevent WHERE event_id = event $$""",
]

BACKWARD = [
    "DROP FUNCTION IF EXISTS nordkestrel_webhook_restaurant(text)",
    "DROP FUNCTION IF EXISTS nordkestrel_account_restaurant(text)",
    "DROP POLICY IF EXISTS tenant_isolation ON payments_webhookevent",
    "ALTER TABLE payments_webhookevent NO FORCE ROW LEVEL SECURITY",
    "ALTER TABLE payments_webhookevent DISABLE ROW LEVEL SECURITY",
    "DROP POLICY IF EXISTS tenant_isolation ON payments_accountroute",
    "ALTER TABLE payments_accountroute NO FORCE ROW LEVEL SECURITY",
    "ALTER TABLE payments_accountroute DISABLE ROW LEVEL SECURITY",
]


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0003_webhook_event_waiting_for"),
        ("tenants", "0007_policies_trust_roles"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
