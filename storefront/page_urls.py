"""The diner's pages on a storefront host."""

from django.urls import path

from storefront import consent_views, payment_views, views

app_name = "storefront"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("items/<int:item_id>", views.ItemView.as_view(), name="item"),
    path("cart", views.CartView.as_view(), name="cart"),
    path("checkout", views.CheckoutView.as_view(), name="checkout"),
    path("orders/<uuid:public_id>", views.OrderView.as_view(), name="order"),
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
