"""API: the restaurant's own settings and opening hours."""

from __future__ import annotations

import re
from datetime import time
from typing import Any

from django.db import models
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from nordkestrel.serializers import StrictModelSerializer, StrictSerializer
from restaurants import deletion, services
from staff.api_base import TenantAPIView
from staff.roles import Scope
from tenants.models import OpeningException, OpeningHours, Restaurant


class RestaurantSerializer(StrictModelSerializer):
    class Meta:
        model = Restaurant
        fields = ["id", "slug", "status", "clerk_organization_id", *services.EDITABLE_SETTINGS]
        read_only_fields = ["id", "slug", "status", "clerk_organization_id"]


WALL_CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


@extend_schema_field(
    {
        "type": "string",
        "pattern": WALL_CLOCK_PATTERN,
        "example": "09:30:00",
        "description": "A time of day on the restaurant's clock (its time zone), without an "
        "offset: HH:MM or HH:MM:SS, answered as HH:MM:SS.",
    }
)
class WallClockTimeField(serializers.TimeField):
    """A time of day in the restaurant's own zone. Not OpenAPI's ``format: time``, which is
    RFC 3339's full-time and requires an offset; an offset or a fraction is refused."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%H:%M:%S", **kwargs)

    def to_internal_value(self, value: Any) -> time:
        if not isinstance(value, str) or not re.fullmatch(WALL_CLOCK_PATTERN, value):
            self.fail("invalid", format="HH:MM or HH:MM:SS")
        return super().to_internal_value(value)


class WallClockSerializer(StrictModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.TimeField: WallClockTimeField,
    }


class OpeningHoursSerializer(WallClockSerializer):
    class Meta:
        model = OpeningHours
        fields = ["weekday", "opens", "closes"]


class OpeningExceptionSerializer(WallClockSerializer):
    class Meta:
        model = OpeningException
        fields = ["date", "closed", "opens", "closes", "note"]


class ScheduleSerializer(StrictSerializer):
    weekly = OpeningHoursSerializer(many=True)
    exceptions = OpeningExceptionSerializer(many=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Uniqueness is checked by the service within this restaurant, not by DRF's
        # validators (they would query across the whole table).
        for name in ("weekly", "exceptions"):
            self.fields[name].child.validators = []  # type: ignore[attr-defined]


class RestaurantSettingsView(TenantAPIView):
    scopes = {"get": Scope.RESTAURANT_READ, "patch": Scope.RESTAURANT_WRITE}

    @extend_schema(responses=RestaurantSerializer)
    def get(self, request: Request) -> Response:
        return Response(RestaurantSerializer(self.actor.restaurant).data)

    @extend_schema(request=RestaurantSerializer, responses=RestaurantSerializer)
    def patch(self, request: Request) -> Response:
        changes = self.parse(RestaurantSerializer, instance=self.actor.restaurant, partial=True)
        restaurant = services.restaurant_update_settings(actor=self.actor, changes=changes)
        return Response(RestaurantSerializer(restaurant).data)


class OpeningHoursView(TenantAPIView):
    scopes = {"get": Scope.RESTAURANT_READ, "put": Scope.RESTAURANT_WRITE}

    def _schedule(self) -> dict[str, object]:
        return ScheduleSerializer(
            {"weekly": OpeningHours.objects.all(), "exceptions": OpeningException.objects.all()}
        ).data

    @extend_schema(responses=ScheduleSerializer)
    def get(self, request: Request) -> Response:
        return Response(self._schedule())

    @extend_schema(request=ScheduleSerializer, responses=ScheduleSerializer)
    def put(self, request: Request) -> Response:
        services.opening_hours_replace(actor=self.actor, **self.parse(ScheduleSerializer))
        return Response(self._schedule())


class DeletionStatusSerializer(serializers.Serializer):
    pending = serializers.BooleanField()
    requested_at = serializers.DateTimeField(allow_null=True)
    purge_after = serializers.DateTimeField(allow_null=True)
    can_cancel = serializers.BooleanField()
    grace_days = serializers.IntegerField()


class DeletionRequestSerializer(StrictSerializer):
    confirm_name = serializers.CharField(max_length=200, trim_whitespace=False)


class RestaurantDeletionView(TenantAPIView):
    """Delete the restaurant account (Owner): request, see the schedule, cancel it.

    Everyone on the staff may read the schedule: the whole dashboard says the restaurant is
    closing. The request and its cancel are the Owner's, with a recent second factor when
    the restaurant asks for one.
    """

    scopes = {
        "get": Scope.RESTAURANT_READ,
        "post": Scope.RESTAURANT_DELETE,
        "delete": Scope.RESTAURANT_DELETE,
    }
    # The cancel must work while the restaurant is pending deletion (a second request
    # answers "already scheduled").
    allowed_while_closing = True

    def _status(self) -> Response:
        return Response(
            DeletionStatusSerializer(deletion.deletion_status(self.actor.restaurant)).data
        )

    @extend_schema(responses=DeletionStatusSerializer)
    def get(self, request: Request) -> Response:
        return self._status()

    @extend_schema(request=DeletionRequestSerializer, responses=DeletionStatusSerializer)
    def post(self, request: Request) -> Response:
        confirm_name = self.parse(DeletionRequestSerializer)["confirm_name"]
        deletion.restaurant_deletion_request(actor=self.actor, confirm_name=confirm_name)
        return self._status()

    @extend_schema(request=None, responses=DeletionStatusSerializer)
    def delete(self, request: Request) -> Response:
        deletion.restaurant_deletion_cancel(actor=self.actor)
        return self._status()
