"""Staff API routes for refunds, payouts and disputes (included under /api/v1/)."""

from django.urls import path

from payments import money_api

urlpatterns = [
    path(
        "orders/<int:pk>/refunds",
        money_api.OrderRefundsView.as_view(),
        name="api-order-refunds",
    ),
    path("payments/payouts", money_api.PayoutsView.as_view(), name="api-payouts"),
    path("disputes", money_api.DisputeListView.as_view(), name="api-disputes"),
    path("disputes/<int:pk>", money_api.DisputeDetailView.as_view(), name="api-dispute-detail"),
]
