from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data for development (``manage.py seed_demo``). The top of the layers: it may
    import every app, and nothing imports it."""

    name = "demo"
