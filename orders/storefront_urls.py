"""The storefront API (``/api/v1/storefront/...`` on a storefront host)."""

from django.urls import path

from orders import storefront_api

urlpatterns = [
    path("options", storefront_api.OptionsView.as_view(), name="api-storefront-options"),
    path("quote", storefront_api.QuoteView.as_view(), name="api-storefront-quote"),
    path("checkout", storefront_api.CheckoutView.as_view(), name="api-storefront-checkout"),
    path(
        "orders/<uuid:public_id>",
        storefront_api.OrderView.as_view(),
        name="api-storefront-order",
    ),
    path(
        "orders/<uuid:public_id>/payment",
        storefront_api.OrderPaymentView.as_view(),
        name="api-storefront-order-payment",
    ),
]
