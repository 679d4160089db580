"""API: reading the restaurant's audit log (Owners and Admins).

The view lives above staff (it is a staff API view); the audit log itself sits below it."""

from __future__ import annotations

from typing import Any

from django.db import models
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import AuditEvent
from audit.selectors import AuditFilters, describe, filter_events
from staff.api_base import TenantAPIView
from staff.roles import Scope


class AuditEventSerializer(serializers.ModelSerializer):
    description = serializers.SerializerMethodField()
    occurred_at_local = serializers.SerializerMethodField()
    actor = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "sequence",
            "occurred_at",
            "occurred_at_local",
            "action",
            "description",
            "actor",
            "target",
            "changes",
            "ip",
            "user_agent",
            "request_id",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields

    def get_description(self, event: AuditEvent) -> str:
        return describe(event)

    def get_occurred_at_local(self, event: AuditEvent) -> str:
        return event.occurred_at.astimezone(self.context["zone"]).isoformat()

    def get_actor(self, event: AuditEvent) -> dict[str, Any]:
        return {
            "type": event.actor_type,
            "staff_id": event.actor_id,
            "clerk_user_id": event.actor_clerk_user_id or None,
            "role": event.actor_role or None,
            "label": event.actor_label,
        }

    def get_target(self, event: AuditEvent) -> dict[str, Any]:
        return {"type": event.target_type, "id": event.target_id, "label": event.target_label}


class AuditFilterSerializer(serializers.Serializer):
    action = serializers.CharField(required=False, max_length=64)
    actor = serializers.CharField(required=False, max_length=64)
    target_type = serializers.CharField(required=False, max_length=64)
    target_id = serializers.CharField(required=False, max_length=64)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": ["Must not be before 'since'."]})
        return attrs


class AuditEventListView(TenantAPIView):
    model = AuditEvent
    serializer_class = AuditEventSerializer
    scopes = {"get": Scope.AUDIT_READ}

    def scope_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        params = AuditFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return filter_events(queryset, AuditFilters(**params.validated_data))

    @extend_schema(
        operation_id="audit_events_list",
        parameters=[AuditFilterSerializer],
        responses=AuditEventSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []
        data = AuditEventSerializer(
            page, many=True, context={"zone": self.actor.restaurant.zone}
        ).data
        return self.get_paginated_response(data)
