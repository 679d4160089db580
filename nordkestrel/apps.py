from django.apps import AppConfig


class NordkestrelConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "nordkestrel"

    def ready(self) -> None:
        # Registers the check that the CSRF middleware in use is ours (nordkestrel/csrf.py).
        from nordkestrel import csrf  # noqa: F401
