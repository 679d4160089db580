from django.apps import AppConfig


class MenusConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "menus"

    def ready(self) -> None:
        from menus import events  # noqa: F401 - registers the menu events
