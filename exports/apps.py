from django.apps import AppConfig


class ExportsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "exports"

    def ready(self) -> None:
        # The built-in export types register themselves in exports.registry.
        from exports import definitions  # noqa: F401
