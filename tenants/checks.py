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
    """Row-level security binds only a role that is neither superuser nor BYPASSRLS.

    Runs with ``manage.py check --database default`` (deploy pipelines); /readyz checks the
    same on every probe.
    """
    from django.db import connections

    errors: list[checks.CheckMessage] = []
    for alias in databases or []:
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )
            row = cursor.fetchone()
        if row is None or row[0]:
            errors.append(
                checks.Error(
                    f"Database '{alias}' is used by a role that bypasses row-level security.",
                    hint="Connect as a role with NOSUPERUSER NOBYPASSRLS.",
                    id="tenants.E004",
                )
            )
    return errors
