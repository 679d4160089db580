"""API: the restaurant's API keys (``/api/v1/api-keys``), for Owners and Admins signed in
through Clerk. A key can list or manage no key (``api_keys:*`` is never granted)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from apikeys import grants, services, usage
from apikeys.models import ApiKey
from nordkestrel.ratelimit import OnOutage, limit
from nordkestrel.serializers import StrictSerializer
from staff.api_base import TenantAPIView
from staff.roles import Scope

CREATE_RATE_GROUP = "api-key-create"
# An answer that carries a secret is kept by no cache.
NOT_STORED = {"Cache-Control": "no-store"}


def _grants_serializer() -> type[serializers.Serializer]:
    fields: dict[str, Any] = {
        name: serializers.ChoiceField(
            choices=[str(level) for level in resource.levels],
            default=str(resource.minimum),
            help_text=resource.description,
        )
        for name, resource in grants.RESOURCES.items()
    }
    return type("ApiKeyGrantsSerializer", (StrictSerializer,), fields)


ApiKeyGrantsSerializer = _grants_serializer()


class CreatorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()
    active = serializers.BooleanField()


class ApiKeySerializer(serializers.ModelSerializer):
    """A key as listed: never its secret; the last four characters tell it apart."""

    grants = serializers.SerializerMethodField()
    scopes = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    last_used_at = serializers.SerializerMethodField()
    last_used_ip = serializers.SerializerMethodField()
    allowed_ips = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "last4",
            "grants",
            "scopes",
            "allowed_ips",
            "status",
            "created_by",
            "created_at",
            "expires_at",
            "rolled_at",
            "previous_last4",
            "previous_expires_at",
            "revoked_at",
            "last_used_at",
            "last_used_ip",
        ]
        read_only_fields = fields

    @extend_schema_field(ApiKeyGrantsSerializer)
    def get_grants(self, key: ApiKey) -> dict[str, str]:
        return grants.normalise(key.grants)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_scopes(self, key: ApiKey) -> list[str]:
        return sorted(grants.scopes_of(key.grants))

    @extend_schema_field(serializers.ChoiceField(choices=ApiKey.Status.choices))
    def get_status(self, key: ApiKey) -> str:
        return str(key.status_at(self.context.get("now") or timezone.now()))

    @extend_schema_field(CreatorSerializer)
    def get_created_by(self, key: ApiKey) -> dict[str, Any]:
        member = key.created_by
        return {
            "id": member.pk,
            "name": member.name,
            "email": member.email,
            "active": member.active,
        }

    def _use(self, key: ApiKey) -> usage.Use | None:
        pending = self.context.get("pending", {}).get(key.pk)
        if pending is not None and (key.last_used_at is None or pending.at > key.last_used_at):
            return pending
        return None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_last_used_at(self, key: ApiKey) -> Any:
        use = self._use(key)
        value = use.at if use is not None else key.last_used_at
        return serializers.DateTimeField().to_representation(value) if value else None

    @extend_schema_field(serializers.IPAddressField(allow_null=True))
    def get_last_used_ip(self, key: ApiKey) -> str | None:
        use = self._use(key)
        return use.ip if use is not None else key.last_used_ip


class IssuedKeySerializer(ApiKeySerializer):
    """A key just created or rolled, with its secret: shown this once, never again."""

    secret = serializers.SerializerMethodField()

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, key: ApiKey) -> str:
        return str(self.context["secret"])


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=80)
    grants = ApiKeyGrantsSerializer()
    expires_in_days = serializers.IntegerField(
        min_value=1, max_value=services.MAX_EXPIRY_DAYS, default=services.DEFAULT_EXPIRY_DAYS
    )
    allowed_ips = serializers.ListField(
        child=serializers.CharField(max_length=64),
        max_length=services.MAX_RANGES,
        default=list,
        help_text="CIDR ranges (or addresses) the key may be used from; empty: anywhere.",
    )


class ApiKeyUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=80, required=False)
    allowed_ips = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=services.MAX_RANGES, required=False
    )


class ApiKeyRollSerializer(StrictSerializer):
    overlap_hours = serializers.IntegerField(
        min_value=0,
        max_value=services.MAX_OVERLAP_HOURS,
        default=services.DEFAULT_OVERLAP_HOURS,
        help_text="How long the current secret keeps working (0 to 168 hours).",
    )
    expires_in_days = serializers.IntegerField(
        min_value=1, max_value=services.MAX_EXPIRY_DAYS, default=services.DEFAULT_EXPIRY_DAYS
    )


class ApiKeySettingsSerializer(StrictSerializer):
    rate_limit_per_minute = serializers.IntegerField(min_value=10, max_value=10_000)


def listed(view: TenantAPIView, keys: list[ApiKey]) -> dict[str, Any]:
    """The serializer context for ``keys``: the time, and uses not yet in the database."""
    restaurant_id = view.actor.restaurant.pk
    return {
        "now": timezone.now(),
        "pending": usage.pending_uses(restaurant_id, [k.pk for k in keys]),
    }


class ApiKeyListView(TenantAPIView):
    """The restaurant's keys, newest first, revoked and expired ones included."""

    model = ApiKey
    serializer_class = ApiKeySerializer
    scopes = {"get": Scope.API_KEYS_READ, "post": Scope.API_KEYS_MANAGE}

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("created_by").order_by("-id")

    @extend_schema(operation_id="api_keys_list", responses=ApiKeySerializer(many=True))
    def get(self, request: Request) -> Response:
        page = list(self.paginate_queryset(self.get_queryset()) or [])
        return self.get_paginated_response(
            ApiKeySerializer(page, many=True, context=listed(self, page)).data
        )

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: IssuedKeySerializer})
    def post(self, request: Request) -> Response:
        fields = self.parse(ApiKeyCreateSerializer)
        limit(
            request._request,
            group=CREATE_RATE_GROUP,
            rate=settings.API_KEY_CREATE_RATE,
            key=lambda _group, _request: str(self.actor.restaurant.pk),
            on_outage=OnOutage.ALLOW,
        )
        issued = services.key_create(actor=self.actor, **fields)
        context = {**listed(self, []), "secret": issued.secret}
        return Response(
            IssuedKeySerializer(issued.key, context=context).data,
            status=status.HTTP_201_CREATED,
            headers=NOT_STORED,
        )


class ApiKeyDetailView(TenantAPIView):
    model = ApiKey
    serializer_class = ApiKeySerializer
    scopes = {"get": Scope.API_KEYS_READ, "patch": Scope.API_KEYS_MANAGE}

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.select_related("created_by")

    def get(self, request: Request, pk: int) -> Response:
        key = self.get_object()
        return Response(ApiKeySerializer(key, context=listed(self, [key])).data)

    @extend_schema(request=ApiKeyUpdateSerializer, responses=ApiKeySerializer)
    def patch(self, request: Request, pk: int) -> Response:
        key = self.get_object()
        changes = self.parse(ApiKeyUpdateSerializer, partial=True)
        key = services.key_update(actor=self.actor, key=key, **changes)
        return Response(ApiKeySerializer(key, context=listed(self, [key])).data)


class ApiKeyRollView(TenantAPIView):
    """A new secret for the key (shown once); the current one keeps working for the overlap."""

    model = ApiKey
    serializer_class = IssuedKeySerializer
    scopes = {"post": Scope.API_KEYS_MANAGE}

    @extend_schema(request=ApiKeyRollSerializer, responses=IssuedKeySerializer)
    def post(self, request: Request, pk: int) -> Response:
        key = self.get_object()
        issued = services.key_roll(actor=self.actor, key=key, **self.parse(ApiKeyRollSerializer))
        context = {**listed(self, [key]), "secret": issued.secret}
        return Response(IssuedKeySerializer(issued.key, context=context).data, headers=NOT_STORED)


class ApiKeyRevokeView(TenantAPIView):
    """The key stops working at once (within ``API_KEY_CACHE_SECONDS`` in other processes)."""

    model = ApiKey
    serializer_class = ApiKeySerializer
    scopes = {"post": Scope.API_KEYS_MANAGE}

    @extend_schema(request=None, responses=ApiKeySerializer)
    def post(self, request: Request, pk: int) -> Response:
        key = services.key_revoke(actor=self.actor, key=self.get_object())
        return Response(ApiKeySerializer(key, context=listed(self, [key])).data)


class ApiKeySettingsView(TenantAPIView):
    """The requests per minute each of the restaurant's keys may make."""

    serializer_class = ApiKeySettingsSerializer
    scopes = {"get": Scope.API_KEYS_READ, "patch": Scope.API_KEYS_MANAGE}

    @extend_schema(responses=ApiKeySettingsSerializer)
    def get(self, request: Request) -> Response:
        current = services.key_settings()
        return Response({"rate_limit_per_minute": current.rate_limit_per_minute})

    @extend_schema(request=ApiKeySettingsSerializer, responses=ApiKeySettingsSerializer)
    def patch(self, request: Request) -> Response:
        fields = self.parse(ApiKeySettingsSerializer)
        current = services.key_settings_update(actor=self.actor, **fields)
        return Response({"rate_limit_per_minute": current.rate_limit_per_minute})
