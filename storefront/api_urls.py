"""The storefront API (``/api/v1/storefront/...`` on a storefront host)."""

from django.urls import path

from storefront import api

urlpatterns = [
    path("options", api.OptionsView.as_view(), name="api-storefront-options"),
    path("quote", api.QuoteView.as_view(), name="api-storefront-quote"),
    path("checkout", api.CheckoutView.as_view(), name="api-storefront-checkout"),
    path(
        "orders/<uuid:public_id>",
        api.OrderView.as_view(),
        name="api-storefront-order",
    ),
    path(
        "orders/<uuid:public_id>/payment",
        api.OrderPaymentView.as_view(),
        name="api-storefront-order-payment",
    ),
]
