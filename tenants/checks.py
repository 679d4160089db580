from typing import Any

from django.apps import apps
from django.core import checks

from tenants.models import TenantModel
from tenants.rls import RowLevelSecurity


@checks.register(checks.Tags.models)
def check_tenant_models(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every tenant model keeps its row-level security and leads its indexes with restaurant."""
    errors: list[checks.CheckMessage] = []
    for model in apps.get_models():
        if not issubclass(model, TenantModel):
            continue
        if not any(isinstance(c, RowLevelSecurity) for c in model._meta.constraints):
            errors.append(
                checks.Error(
                    f"{model.__name__} dropped its RowLevelSecurity constraint.",
                    hint="Write constraints = [*TenantModel.Meta.constraints, ...].",
                    obj=model,
                    id="tenants.E001",
                )
            )
        for constraint in model._meta.constraints:
            fields = getattr(constraint, "fields", None)
            if fields and fields[0] != "restaurant":
                errors.append(
                    checks.Error(
                        f"{model.__name__}.{constraint.name} must start with restaurant.",
                        obj=model,
                        id="tenants.E002",
                    )
                )
        for index in model._meta.indexes:
            if index.fields and index.fields[0] != "restaurant":
                errors.append(
                    checks.Error(
                        f"{model.__name__} index {index.name} must start with restaurant.",
                        obj=model,
                        id="tenants.E003",
                    )
                )
    return errors


@checks.register(checks.Tags.database)
def check_database_role(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Row-level security binds the application role only if it cannot lower the wall: it
    is no superuser, has no BYPASSRLS, owns nothing, belongs to no other role and may create
    nothing (nordkestrel/dbgrants.py).

    Runs with ``manage.py check --deploy --database default`` (deploy pipelines); /readyz
    checks the same on every probe. Only the ``default`` alias is the application role.
    """
    from django.db import connections

    from nordkestrel.dbgrants import UNSAFE_ROLE_SQL

    errors: list[checks.CheckMessage] = []
    for alias in databases or []:
        if alias != "default":
            continue
        with connections[alias].cursor() as cursor:
            cursor.execute(UNSAFE_ROLE_SQL)
            row = cursor.fetchone()
        if row is None or row[0]:
            why = row[0] if row else "is not a role"
            errors.append(
                checks.Error(
                    f"Database '{alias}' is used by a role that {why}: it could lower "
                    "row-level security.",
                    hint="Connect as the application role made by nordkestrel/dbroles.py.",
                    id="tenants.E004",
                )
            )
    return errors
