from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"

    def ready(self) -> None:
        from orders import payment_methods
        from payments import (
            deletion,  # noqa: F401 - registers the account purge's payments step
            event_handlers,  # noqa: F401 - registers the webhook handlers
            events,  # noqa: F401 - registers the payment events
            money_events,  # noqa: F401 - refunds, disputes, payouts
        )
        from payments.services import CardPayment

        payment_methods.register(CardPayment())
