"""Staff API routes for customers (included under /api/v1/); one customer with their orders
is routed by the orders app (``orders.api_urls``)."""

from django.urls import path

from customers import api

urlpatterns = [
    path("customers", api.CustomerListView.as_view(), name="api-customers"),
]
