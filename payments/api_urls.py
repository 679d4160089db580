"""Staff API routes for the restaurant's Stripe account (included under /api/v1/)."""

from django.urls import path

from payments import api

urlpatterns = [
    path("payments/account", api.PaymentAccountView.as_view(), name="api-payments-account"),
    path(
        "payments/account/onboarding-link",
        api.OnboardingLinkView.as_view(),
        name="api-payments-onboarding-link",
    ),
]
