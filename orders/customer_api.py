"""API: one customer with their latest orders (personal data: Owners, Admins and Managers).

The customer's record belongs to the customers app, which sits below orders and reads none
of them; the page that joins the two is served from here.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from customers.api import CustomerSerializer
from customers.models import Customer
from orders.selectors import customer_recent_orders
from staff.api_base import TenantAPIView
from staff.roles import Scope


class CustomerOrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    status = serializers.CharField()
    total = serializers.IntegerField()
    currency = serializers.CharField()
    created_at = serializers.DateTimeField()


class CustomerDetailSerializer(CustomerSerializer):
    recent_orders = serializers.SerializerMethodField()

    class Meta(CustomerSerializer.Meta):
        fields = [*CustomerSerializer.Meta.fields, "recent_orders"]
        read_only_fields = fields

    @extend_schema_field(CustomerOrderSerializer(many=True))
    def get_recent_orders(self, customer: Customer) -> Any:
        return CustomerOrderSerializer(self.context["orders"], many=True).data


class CustomerDetailView(TenantAPIView):
    """One customer, with their latest orders (at most 20)."""

    model = Customer
    serializer_class = CustomerDetailSerializer
    scopes = {"get": Scope.CUSTOMERS_READ}

    def get(self, request: Request, pk: int) -> Response:
        customer = self.get_object()
        context = {
            "currency": self.actor.restaurant.currency,
            "orders": customer_recent_orders(customer.pk),
        }
        return Response(CustomerDetailSerializer(customer, context=context).data)
