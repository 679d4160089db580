from django.apps import AppConfig


class TenantsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tenants"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from nordkestrel import dbgrants
        from tenants import checks  # noqa: F401  (registers the system checks)

        # The owner's grants follow every migration (new tables included).
        post_migrate.connect(dbgrants.after_migrate, sender=self)
