"""API for staff: the orders list (the kitchen's queue with ``active=true``), one order with
its history, and moving or cancelling it. Diner contact data only for roles that may see it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import models
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.pagination import Cursor
from rest_framework.request import Request
from rest_framework.response import Response

from nordkestrel.serializers import StrictSerializer
from orders import selectors, services
from orders.models import Order, OrderLine, StatusChange
from staff.api_base import TenantAPIView, TenantCursorPagination
from staff.auth import Actor
from staff.roles import Scope

# Diner contact data: shown only to roles with orders:contact (never to the Kitchen role).
CONTACT_FIELDS = (
    "contact_name",
    "contact_email",
    "contact_phone",
    "delivery_address",
    "delivery_notes",
    "customer",
)


class OrderLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = [
            "position", "item_id", "name", "modifiers", "unit_price", "quantity", "line_total",
            "note",
        ]  # fmt: skip
        read_only_fields = fields


class OrderStatusChangeSerializer(serializers.Serializer):
    """One step of an order's history: ``{"from", "to", "at", "actor_label"}``."""

    at = serializers.DateTimeField(read_only=True)
    actor_label = serializers.CharField(read_only=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        declared = super().get_fields()
        # "from" is a Python keyword, so these two cannot be declared as attributes.
        return {
            "from": serializers.SerializerMethodField(method_name="get_from"),
            "to": serializers.CharField(source="to_status", read_only=True),
            **declared,
        }

    def get_from(self, change: StatusChange) -> str | None:
        return change.from_status or None


class OrderSerializer(serializers.ModelSerializer):
    """An order for staff. Pass ``context={"actor": actor}``: without ``orders:contact`` (or
    without an actor) the contact fields are not in the answer at all."""

    lines = OrderLineSerializer(many=True, read_only=True)
    late = serializers.SerializerMethodField()
    next_status = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id", "number", "status", "fulfilment", "payment_method", "scheduled_for",
            "promised_at", "late", "next_status", "currency", "subtotal", "discount", "tax",
            "tax_rate", "prices_include_tax", "delivery_fee", "tip", "total", "promotion_code",
            "cancel_reason", "created_at", "placed_at", "accepted_at", "preparing_at",
            "ready_at", "completed_at", "cancelled_at", "lines", *CONTACT_FIELDS,
        ]  # fmt: skip
        read_only_fields = fields

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actor = self.context.get("actor")
        if not (isinstance(actor, Actor) and actor.has(Scope.ORDERS_CONTACT)):
            for name in CONTACT_FIELDS:
                self.fields.pop(name, None)

    def get_late(self, order: Order) -> bool:
        return selectors.is_late(order, self.context.get("now"))

    def get_next_status(self, order: Order) -> str | None:
        return selectors.next_step(order)


class OrderDetailSerializer(OrderSerializer):
    history = OrderStatusChangeSerializer(source="status_changes", many=True, read_only=True)

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "history"]
        read_only_fields = fields


class OrderMoveSerializer(StrictSerializer):
    status = serializers.CharField(max_length=20)


class OrderCancelSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class OrderCursorPagination(TenantCursorPagination):
    """By creation time then id: oldest first (the queue) or, asked for, newest first."""

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> tuple[str, ...]:
        if selectors.parse_ordering(request.query_params) == selectors.NEWEST_FIRST:
            return ("-created_at", "-id")
        return ("created_at", "id")

    def decode_cursor(self, request: Request) -> Cursor | None:
        cursor = super().decode_cursor(request)
        # A forged position would reach the database as a malformed timestamp.
        if (
            cursor is not None
            and cursor.position is not None
            and not _timestamp(str(cursor.position))
        ):
            raise exceptions.NotFound(self.invalid_cursor_message)
        return cursor


def _timestamp(text: str) -> datetime | None:
    try:
        parsed = parse_datetime(text)
    except ValueError:
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


ORDER_FILTERS = [
    OpenApiParameter("status", str, many=True, description="Repeat or separate with commas."),
    OpenApiParameter("active", bool, description="Only placed, accepted, preparing, ready."),
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="In the restaurant's zone."),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Inclusive."),
    OpenApiParameter("fulfilment", str, enum=["pickup", "delivery"]),
    OpenApiParameter("ordering", str, enum=["created_at", "-created_at"]),
]


class OrderListView(TenantAPIView):
    model = Order
    serializer_class = OrderSerializer
    pagination_class = OrderCursorPagination
    scopes = {"get": Scope.ORDERS_READ}

    def scope_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        params = self.request.query_params
        selectors.parse_ordering(params)
        filters = selectors.parse_filters(params)
        return selectors.with_lines(
            selectors.filter_orders(queryset, filters, zone=self.actor.restaurant.zone)
        )

    @extend_schema(
        operation_id="orders_list", parameters=ORDER_FILTERS, responses=OrderSerializer(many=True)
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []
        data = OrderSerializer(page, many=True, context={"actor": self.actor}).data
        return self.get_paginated_response(data)


class OrderDetailView(TenantAPIView):
    model = Order
    serializer_class = OrderDetailSerializer
    scopes = {"get": Scope.ORDERS_READ}

    def scope_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        return selectors.order_with_history(queryset)

    def get(self, request: Request, pk: int) -> Response:
        return Response(
            OrderDetailSerializer(self.get_object(), context={"actor": self.actor}).data
        )


class _OrderActionView(TenantAPIView):
    abstract = True
    model = Order
    serializer_class = OrderDetailSerializer

    def answer(self, order: Order) -> Response:
        fresh = selectors.order_with_history(Order.objects.filter(pk=order.pk)).get()
        return Response(OrderDetailSerializer(fresh, context={"actor": self.actor}).data)


class OrderStatusView(_OrderActionView):
    """Move an order: ``{"status": "accepted"}``. Asking for its current status changes
    nothing; a move outside the graph is 409 ``illegal_transition``."""

    scopes = {"post": Scope.ORDERS_PROGRESS}

    @extend_schema(request=OrderMoveSerializer, responses=OrderDetailSerializer)
    def post(self, request: Request, pk: int) -> Response:
        order = self.get_object()
        to_status = self.parse(OrderMoveSerializer)["status"]
        services.order_transition(actor=self.actor, order_id=order.pk, to_status=to_status)
        return self.answer(order)


class OrderCancelView(_OrderActionView):
    """Cancel an order: ``{"reason": "..."}`` (audited)."""

    scopes = {"post": Scope.ORDERS_CANCEL}

    @extend_schema(request=OrderCancelSerializer, responses=OrderDetailSerializer)
    def post(self, request: Request, pk: int) -> Response:
        order = self.get_object()
        reason = self.parse(OrderCancelSerializer)["reason"]
        services.order_cancel(actor=self.actor, order_id=order.pk, reason=reason)
        return self.answer(order)
