"""API: the restaurant's webhook endpoints (``/api/v1/webhook-endpoints``), their delivery log,
sending again and recovering. Owners and Admins, and API keys granted ``webhooks``."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from nordkestrel.serializers import StrictSerializer
from staff.api_base import TenantAPIView
from staff.roles import Scope
from webhooks import limits, services
from webhooks.models import Attempt, Delivery, Endpoint

NOT_STORED = {"Cache-Control": "no-store"}
MAX_EVENT_TYPES = 50


class EndpointSerializer(serializers.ModelSerializer):
    """An endpoint as listed: never its secret."""

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "enabled",
            "disabled_reason",
            "disabled_at",
            "failing_since",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    # As it was given (a host name may be an IDN): a string, not necessarily an RFC 3986 URI.
    url = serializers.CharField(read_only=True)
    event_types = serializers.ListField(child=serializers.CharField(), read_only=True)


class IssuedEndpointSerializer(EndpointSerializer):
    """An endpoint just created or rotated, with its signing secret: shown this once."""

    secret = serializers.SerializerMethodField()

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, endpoint: Endpoint) -> str:
        return str(self.context["secret"])


class EndpointCreateSerializer(StrictSerializer):
    url = serializers.CharField(max_length=2000, help_text="https URL that receives the events.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64),
        max_length=MAX_EVENT_TYPES,
        required=False,
        help_text="Event types to receive; empty or absent: every type you may read.",
    )
    enabled = serializers.BooleanField(required=False, default=True)


class EndpointUpdateSerializer(StrictSerializer):
    url = serializers.CharField(max_length=2000, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=MAX_EVENT_TYPES, required=False
    )
    enabled = serializers.BooleanField(required=False)


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = [
            "id",
            "attempted_at",
            "trigger",
            "status_code",
            "error",
            "duration_ms",
            "response_body",
        ]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    attempts_log = AttemptSerializer(source="log", many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "endpoint",
            "event_id",
            "event_type",
            "message_id",
            "status",
            "attempts",
            "created_at",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "attempts_log",
        ]
        read_only_fields = fields


class RecoverSerializer(StrictSerializer):
    since = serializers.DateTimeField(
        help_text="Every delivery created since this time that failed is sent again."
    )


class RecoveredSerializer(serializers.Serializer):
    deliveries = serializers.IntegerField(help_text="How many deliveries are sent again.")


class EndpointListView(TenantAPIView):
    model = Endpoint
    serializer_class = EndpointSerializer
    scopes = {"get": Scope.WEBHOOKS_READ, "post": Scope.WEBHOOKS_MANAGE}

    def scope_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.order_by("-id")

    @extend_schema(operation_id="webhook_endpoints_list", responses=EndpointSerializer(many=True))
    def get(self, request: Request) -> Response:
        return self.paginated(self.get_queryset(), EndpointSerializer)

    @extend_schema(request=EndpointCreateSerializer, responses={201: IssuedEndpointSerializer})
    def post(self, request: Request) -> Response:
        fields = self.parse(EndpointCreateSerializer)
        limits.count_create(request._request, self.actor.restaurant.pk)
        issued = services.endpoint_create(actor=self.actor, **fields)
        return Response(
            IssuedEndpointSerializer(issued.endpoint, context={"secret": issued.secret}).data,
            status=status.HTTP_201_CREATED,
            headers=NOT_STORED,
        )


class EndpointDetailView(TenantAPIView):
    model = Endpoint
    serializer_class = EndpointSerializer
    scopes = {
        "get": Scope.WEBHOOKS_READ,
        "patch": Scope.WEBHOOKS_MANAGE,
        "delete": Scope.WEBHOOKS_MANAGE,
    }

    def get(self, request: Request, pk: int) -> Response:
        return Response(EndpointSerializer(self.get_object()).data)

    @extend_schema(request=EndpointUpdateSerializer, responses=EndpointSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        endpoint = self.get_object()
        changes = self.parse(EndpointUpdateSerializer, partial=True)
        endpoint = services.endpoint_update(actor=self.actor, endpoint=endpoint, **changes)
        return Response(EndpointSerializer(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        services.endpoint_delete(actor=self.actor, endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointRotateView(TenantAPIView):
    """A new signing secret (shown once); the previous one also signs for 24 hours."""

    model = Endpoint
    serializer_class = IssuedEndpointSerializer
    scopes = {"post": Scope.WEBHOOKS_MANAGE}

    @extend_schema(request=None, responses=IssuedEndpointSerializer)
    def post(self, request: Request, pk: int) -> Response:
        issued = services.endpoint_rotate(actor=self.actor, endpoint=self.get_object())
        return Response(
            IssuedEndpointSerializer(issued.endpoint, context={"secret": issued.secret}).data,
            headers=NOT_STORED,
        )


class EndpointTestView(TenantAPIView):
    """Send a ``webhook.test`` message now; its attempt appears in the delivery log."""

    model = Endpoint
    serializer_class = DeliverySerializer
    scopes = {"post": Scope.WEBHOOKS_MANAGE}

    @extend_schema(request=None, responses={202: DeliverySerializer})
    def post(self, request: Request, pk: int) -> Response:
        endpoint = self.get_object()
        limits.count_test(request._request, self.actor.restaurant.pk)
        delivery = services.send_test(actor=self.actor, endpoint=endpoint)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class EndpointRecoverView(TenantAPIView):
    """Send again every delivery to the endpoint that failed since a time."""

    model = Endpoint
    serializer_class = RecoverSerializer
    scopes = {"post": Scope.WEBHOOKS_MANAGE}

    @extend_schema(request=RecoverSerializer, responses={202: RecoveredSerializer})
    def post(self, request: Request, pk: int) -> Response:
        endpoint = self.get_object()
        since = self.parse(RecoverSerializer)["since"]
        count = services.recover(actor=self.actor, endpoint=endpoint, since=since)
        return Response({"deliveries": count}, status=status.HTTP_202_ACCEPTED)


class _EndpointDeliveries(TenantAPIView):
    abstract = True
    model = Delivery
    serializer_class = DeliverySerializer

    def scope_queryset(self, queryset: QuerySet) -> QuerySet:
        endpoint = Endpoint.objects.filter(pk=self.kwargs["endpoint_pk"]).first()
        if endpoint is None:
            raise Http404
        return queryset.filter(endpoint=endpoint).prefetch_related(
            Prefetch("log", queryset=Attempt.objects.order_by("-attempted_at", "-id"))
        )


class DeliveryListView(_EndpointDeliveries):
    """The endpoint's deliveries, newest first, each with every attempt (kept 30 days)."""

    scopes = {"get": Scope.WEBHOOKS_READ}

    @extend_schema(
        operation_id="webhook_endpoint_deliveries_list",
        responses=DeliverySerializer(many=True),
        parameters=[
            OpenApiParameter(
                "status", str, enum=[str(s) for s in Delivery.Status.values], required=False
            )
        ],
    )
    def get(self, request: Request, endpoint_pk: int) -> Response:
        queryset = self.get_queryset()
        wanted = request.query_params.get("status")
        if wanted is not None:
            if wanted not in Delivery.Status.values:
                raise serializers.ValidationError(
                    {"status": [f"One of {', '.join(Delivery.Status.values)}."]}
                )
            queryset = queryset.filter(status=wanted)
        return self.paginated(queryset, DeliverySerializer)


class DeliveryDetailView(_EndpointDeliveries):
    scopes = {"get": Scope.WEBHOOKS_READ}

    def get(self, request: Request, endpoint_pk: int, pk: int) -> Response:
        return Response(DeliverySerializer(self.get_object()).data)


class DeliveryResendView(_EndpointDeliveries):
    """Send this delivery again now, once, with the same ``webhook-id``."""

    scopes = {"post": Scope.WEBHOOKS_MANAGE}

    @extend_schema(request=None, responses={202: DeliverySerializer})
    def post(self, request: Request, endpoint_pk: int, pk: int) -> Response:
        delivery = services.resend(actor=self.actor, delivery=self.get_object())
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
