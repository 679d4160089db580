from django.apps import AppConfig


class OrdersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "orders"

    def ready(self) -> None:
        from orders import (
            events,  # noqa: F401 - registers the order events
            notifications,  # noqa: F401 - subscribes the diner's emails to them
        )
