from django.apps import AppConfig


class ApiKeysConfig(AppConfig):
    """API keys for integrators: a credential class in the access policy (staff.access), its
    API, the usage marks and the expiry warnings."""

    name = "apikeys"
    verbose_name = "API keys"

    def ready(self) -> None:
        from apikeys import (
            credentials,  # noqa: F401 - registers the credential class
            deletion,  # noqa: F401 - registers the account purge's step
        )
