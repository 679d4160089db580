"""API: the restaurant's customers (personal data: Owners, Admins and Managers).

One customer with their latest orders is served by the orders app (``orders.customer_api``),
which sits above this one."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from customers import selectors
from customers.models import Customer
from nordkestrel.errors import InvalidInput
from staff.api_base import TenantAPIView
from staff.roles import Scope

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class CustomerSerializer(serializers.ModelSerializer):
    currency = serializers.SerializerMethodField()
    # Blank until the diner confirms consent (a read-only model field would drop the blank
    # from the schema's enum).
    consent_source = serializers.ChoiceField(
        choices=Customer.ConsentSource.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = Customer
        fields = [
            "id", "email", "name", "phone", "order_count", "total_spent", "currency",
            "first_order_at", "last_order_at", "marketing_consent", "consent_at",
            "consent_source", "consent_requested_at", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_currency(self, customer: Customer) -> str:
        return str(self.context["currency"])


class CustomerQuerySerializer(serializers.Serializer):
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=selectors.MAX_SEARCH_LENGTH
    )
    marketing_consent = serializers.ChoiceField(choices=["true", "false"], required=False)
    cursor = serializers.CharField(required=False, max_length=500)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE)


class CustomerPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CustomerSerializer(many=True)


class CustomerListView(TenantAPIView):
    """Search (``q``: email, name or phone) and filter (``marketing_consent``); newest last
    order first, then customers without a counted order; cursor pagination."""

    model = Customer
    serializer_class = CustomerSerializer
    scopes = {"get": Scope.CUSTOMERS_READ}

    @extend_schema(
        operation_id="customers_list",
        parameters=[CustomerQuerySerializer],
        responses=CustomerPageSerializer,
    )
    def get(self, request: Request) -> Response:
        params = CustomerQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        consent = query.get("marketing_consent")
        try:
            cursor = selectors.Cursor.decode(query["cursor"]) if query.get("cursor") else None
        except selectors.InvalidCursor as error:
            raise InvalidInput(str(error), code="invalid_cursor", attr="cursor") from None
        page = selectors.page_by_last_order(
            selectors.search_customers(
                q=query.get("q", ""),
                marketing_consent=None if consent is None else consent == "true",
            ),
            cursor=cursor,
            size=query.get("page_size", PAGE_SIZE),
        )
        url = request.build_absolute_uri()
        context = {"currency": self.actor.restaurant.currency}
        return Response(
            {
                "next": replace_query_param(url, "cursor", page.next.encode())
                if page.next
                else None,
                "previous": replace_query_param(url, "cursor", page.previous.encode())
                if page.previous
                else None,
                "results": CustomerSerializer(page.rows, many=True, context=context).data,
            }
        )
