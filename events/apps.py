from django.apps import AppConfig


class EventsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "events"

    def ready(self) -> None:
        from events.outbox import TableOutbox
        from nordkestrel import events

        events.install_outbox(TableOutbox())
