from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"

    def ready(self) -> None:
        from orders import payment_methods
        from payments.services import CardPayment

        payment_methods.register(CardPayment())
