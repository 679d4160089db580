"""The diner's pages on a storefront host."""

from django.urls import path

from storefront import checkout_views, consent_views, menu_views, order_views, payment_views

app_name = "storefront"

urlpatterns = [
    path("", menu_views.HomeView.as_view(), name="home"),
    path("items/<int:item_id>", menu_views.ItemView.as_view(), name="item"),
    path("cart", menu_views.CartView.as_view(), name="cart"),
    path("checkout", checkout_views.CheckoutView.as_view(), name="checkout"),
    path("orders/<uuid:public_id>", order_views.OrderView.as_view(), name="order"),
    path("orders/<uuid:public_id>/pay", payment_views.PayView.as_view(), name="pay"),
    path(
        "orders/<uuid:public_id>/return",
        payment_views.PaymentReturnView.as_view(),
        name="pay-return",
    ),
    path(
        "news/confirm/<str:token>",
        consent_views.ConsentConfirmView.as_view(),
        name="consent-confirm",
    ),
]
