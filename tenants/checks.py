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
