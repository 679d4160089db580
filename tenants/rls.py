"""Row-level security for tenant tables, as a model constraint.

:class:`TenantModel` carries :class:`RowLevelSecurity` in its ``Meta.constraints``, so
``makemigrations`` writes it into the migration that creates every tenant table: the table
gets ``ENABLE`` and ``FORCE ROW LEVEL SECURITY`` and one policy keyed on the transaction-local
``app.restaurant_id``, or on the role: only the platform role crosses restaurants (its name
is in the policy, nordkestrel/dbgrants.py), and no setting does. With no restaurant
set, the application role sees no rows and its inserts are refused, even in raw SQL.
"""

from __future__ import annotations

from typing import Any

from django.db.models import BaseConstraint

from nordkestrel import dbgrants
from tenants.context import RESTAURANT_SETTING

POLICY_NAME = "tenant_isolation"
PUBLIC_READ_POLICY = "public_read"


def tenant_condition(column: str = "restaurant_id") -> str:
    """The policy: the row is the current restaurant's, or the role is the platform's."""
    return (
        f"({column} = NULLIF(current_setting('{RESTAURANT_SETTING}', true), '')::bigint "
        f"OR {dbgrants.crossing_condition()})"
    )


class RowLevelSecurity(BaseConstraint):
    """``public_read=True`` adds a read-only policy for tables that hold only what every
    visitor may see (the published storefront menu): writes stay bound to the tenant."""

    def __init__(self, *, name: str, public_read: bool = False, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.public_read = public_read

    def deconstruct(self) -> tuple[str, Any, dict[str, Any]]:
        path, args, kwargs = super().deconstruct()
        if self.public_read:
            kwargs["public_read"] = True
        return path, args, kwargs

    def _statements(self, model: Any, schema_editor: Any) -> list[str]:
        table = schema_editor.quote_name(model._meta.db_table)
        column = schema_editor.quote_name(model._meta.get_field("restaurant").column)
        condition = tenant_condition(column)
        statements = [
            dbgrants.platform_function_sql(),
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY {POLICY_NAME} ON {table} USING {condition} WITH CHECK {condition}",
        ]
        if self.public_read:
            statements.append(
                f"CREATE POLICY {PUBLIC_READ_POLICY} ON {table} FOR SELECT USING (true)"
            )
        return statements

    def constraint_sql(self, model: Any, schema_editor: Any) -> str:
        # Called while the table is being created: the statements run once it exists.
        schema_editor.deferred_sql.extend(self._statements(model, schema_editor))
        return ""

    def create_sql(self, model: Any, schema_editor: Any) -> str:
        return "; ".join(self._statements(model, schema_editor))

    def remove_sql(self, model: Any, schema_editor: Any) -> str:
        table = schema_editor.quote_name(model._meta.db_table)
        return (
            f"DROP POLICY IF EXISTS {PUBLIC_READ_POLICY} ON {table}; "
            f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}; "
            f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY; "
            f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"
        )

    def validate(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to validate in Python: the database enforces it."""

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RowLevelSecurity)
            and self.name == other.name
            and self.public_read == other.public_read
        )

    def __hash__(self) -> int:
        return hash((type(self), self.name, self.public_read))
