from django.apps import AppConfig


class StaffConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "staff"

    def ready(self) -> None:
        # Registers the Clerk session with the request chain (staff/access.py).
        from staff import credentials  # noqa: F401
