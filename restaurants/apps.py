from django.apps import AppConfig


class RestaurantsConfig(AppConfig):
    """The restaurant's lifecycle: its settings and opening hours, the account deletion and
    the purge, their API and periodic job. Its models live in the tenancy kernel
    (``tenants.models``); this app sits above staff and audit, which it uses."""

    name = "restaurants"
