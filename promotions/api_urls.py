"""Staff API routes for promotions (included under /api/v1/)."""

from django.urls import path

from promotions import api

urlpatterns = [
    path("promotions", api.PromotionListView.as_view(), name="api-promotions"),
    path("promotions/<int:pk>", api.PromotionDetailView.as_view(), name="api-promotion-detail"),
    path(
        "promotions/<int:pk>/redemptions",
        api.PromotionRedemptionsView.as_view(),
        name="api-promotion-redemptions",
    ),
]
