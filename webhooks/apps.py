from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Outbound webhooks: endpoints, the event bus subscriber that owes them deliveries, the
    sender (``manage.py run_webhooks``), the delivery log, replay, and the events API."""

    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from webhooks import fanout  # noqa: F401 - subscribes to the event bus
