"""Staff API routes for customers (included under /api/v1/)."""

from django.urls import path

from customers import api

urlpatterns = [
    path("customers", api.CustomerListView.as_view(), name="api-customers"),
    path("customers/<int:pk>", api.CustomerDetailView.as_view(), name="api-customer-detail"),
]
