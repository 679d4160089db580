"""API: promotion codes and their redemptions (Owners, Admins and Managers).

Reading codes needs the same scope as writing them: they are the restaurant's discounts.
Amounts are integer minor units; times are ISO 8601 (a time without an offset is read in the
restaurant's time zone). Codes are never deleted; PATCH ``{"active": false}`` retires one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from nordkestrel.serializers import StrictSerializer
from promotions import services
from promotions.models import Promotion, Redemption
from staff.api_base import TenantAPIView
from staff.roles import Scope


class PromotionSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    currency = serializers.SerializerMethodField()

    class Meta:
        model = Promotion
        fields = [
            "id", "code", "description", "kind", "value", "min_subtotal", "currency",
            "starts_at", "ends_at", "max_redemptions", "per_customer_limit", "first_order_only",
            "active", "redemption_count", "status", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_status(self, promotion: Promotion) -> str:
        return services.promotion_status(promotion, self.context["now"])

    def get_currency(self, promotion: Promotion) -> str:
        return str(self.context["currency"])


class LocalDateTimeField(serializers.DateTimeField):
    """ISO 8601; a time given without an offset is the restaurant's local time."""

    def enforce_timezone(self, value: datetime) -> datetime:
        if value.tzinfo is None:
            zone = self.context["zone"]
            aware = value.replace(tzinfo=zone)
            try:
                # A time the clocks skip (spring forward) does not survive the round trip.
                exists = aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == value
            except OverflowError:
                exists = False
            if not exists:
                self.fail("make_aware", timezone=zone)
            return aware
        return super().enforce_timezone(value)


class PromotionInputSerializer(StrictSerializer):
    """The writable fields, and their types; the rules are the service's."""

    code = serializers.CharField()
    description = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.CharField()
    value = serializers.IntegerField(help_text="Percent (1-100), or minor units when fixed.")
    min_subtotal = serializers.IntegerField(required=False, help_text="Minor units.")
    starts_at = LocalDateTimeField(required=False, allow_null=True)
    ends_at = LocalDateTimeField(required=False, allow_null=True)
    max_redemptions = serializers.IntegerField(required=False, allow_null=True)
    per_customer_limit = serializers.IntegerField(required=False, allow_null=True)
    first_order_only = serializers.BooleanField(required=False)
    active = serializers.BooleanField(required=False)


class RedemptionSerializer(serializers.ModelSerializer):
    order_number = serializers.IntegerField(source="order.number", read_only=True)
    customer_email = serializers.EmailField(source="customer.email", read_only=True)

    class Meta:
        model = Redemption
        fields = [
            "id", "order", "order_number", "customer", "customer_email", "discount", "counted",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


def context_for(view: TenantAPIView) -> dict[str, Any]:
    return {"now": timezone.now(), "currency": view.actor.restaurant.currency}


READ, WRITE = Scope.PROMOTIONS_READ, Scope.PROMOTIONS_WRITE


class PromotionListView(TenantAPIView):
    """Codes, newest first, each with its uses and where it stands now (``status``)."""

    model = Promotion
    serializer_class = PromotionSerializer
    scopes = {"get": READ, "post": WRITE}

    @extend_schema(operation_id="promotions_list", responses=PromotionSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []
        data = PromotionSerializer(page, many=True, context=context_for(self)).data
        return self.get_paginated_response(data)

    @extend_schema(request=PromotionInputSerializer, responses={201: PromotionSerializer})
    def post(self, request: Request) -> Response:
        fields = self.parse(PromotionInputSerializer, zone=self.actor.restaurant.zone)
        promotion = services.promotion_create(actor=self.actor, **fields)
        return Response(
            PromotionSerializer(promotion, context=context_for(self)).data,
            status=status.HTTP_201_CREATED,
        )


class PromotionDetailView(TenantAPIView):
    model = Promotion
    serializer_class = PromotionSerializer
    scopes = {"get": READ, "patch": WRITE}

    def get(self, request: Request, pk: int) -> Response:
        return Response(PromotionSerializer(self.get_object(), context=context_for(self)).data)

    @extend_schema(request=PromotionInputSerializer, responses=PromotionSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        promotion = self.get_object()
        fields = self.parse(PromotionInputSerializer, partial=True, zone=self.actor.restaurant.zone)
        promotion = services.promotion_update(actor=self.actor, promotion=promotion, **fields)
        return Response(PromotionSerializer(promotion, context=context_for(self)).data)


class PromotionRedemptionsView(TenantAPIView):
    """The orders that used a code, newest first; ``counted`` is false once the order was
    cancelled (its use went back to the code's limits)."""

    model = Promotion
    serializer_class = RedemptionSerializer
    scopes = {"get": READ}

    @extend_schema(operation_id="promotion_redemptions", responses=RedemptionSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        promotion = self.get_object()
        redemptions = (
            Redemption.objects.filter(promotion_id=promotion.pk)
            .select_related("order", "customer")
            .only(
                "id", "discount", "counted", "created_at", "order__id", "order__number",
                "customer__id", "customer__email",
            )
        )  # fmt: skip
        return self.paginated(redemptions, RedemptionSerializer)
