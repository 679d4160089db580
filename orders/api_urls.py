"""Staff API routes for orders (included under /api/v1/)."""

from django.urls import path

from orders import api, customer_api

urlpatterns = [
    path("orders", api.OrderListView.as_view(), name="api-orders"),
    path("orders/<int:pk>", api.OrderDetailView.as_view(), name="api-order-detail"),
    path("orders/<int:pk>/status", api.OrderStatusView.as_view(), name="api-order-status"),
    path("orders/<int:pk>/cancel", api.OrderCancelView.as_view(), name="api-order-cancel"),
    path(
        "customers/<int:pk>",
        customer_api.CustomerDetailView.as_view(),
        name="api-customer-detail",
    ),
]
