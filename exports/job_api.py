"""API: background exports (Owners and Admins).

``POST /exports/jobs`` with ``{"type", "filters", "bom"}`` starts one (``type`` is an export
type's name or ``everything``, a zip of every CSV; ``filters`` holds ``date_from``,
``date_to`` and ``status``, as the streamed export takes them); the job runs in the
background and emails the member when the file is ready. ``GET /exports/jobs/<id>`` shows its
status and progress and, once it is done, a ``download_url`` that works for a few minutes
(ask again for a fresh one).
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from exports import services
from exports.models import Export
from nordkestrel.serializers import AsSent, StrictSerializer
from staff.api_base import TenantAPIView
from staff.roles import Scope

FILE_ROUTE = "dashboard:export-file"


class ExportJobSerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="export_type")
    requested_by = serializers.CharField(source="requested_by_label")
    expired = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = [
            "id", "type", "filters", "bom", "status", "rows_written", "percent", "file_name",
            "size", "requested_by", "error", "created_at", "started_at", "finished_at",
            "expires_at", "expired",
        ]  # fmt: skip
        read_only_fields = fields

    def get_expired(self, export: Export) -> bool:
        return services.is_expired(export)


class ExportJobDetailSerializer(ExportJobSerializer):
    download_url = serializers.SerializerMethodField(
        help_text="When the file is ready: a link that works for a few minutes, else null."
    )

    class Meta(ExportJobSerializer.Meta):
        fields = [*ExportJobSerializer.Meta.fields, "download_url"]
        read_only_fields = fields

    def get_download_url(self, export: Export) -> str | None:
        if export.status != Export.Status.DONE or services.is_expired(export):
            return None
        view: TenantAPIView = self.context["view"]
        url = services.export_download_url(actor=view.actor, export=export, route=FILE_ROUTE)
        return str(view.request.build_absolute_uri(url))


EXPORT_JOB_INPUT = inline_serializer(
    "ExportJobInput",
    {
        "type": serializers.CharField(help_text="An export type's name, or 'everything'."),
        "filters": serializers.DictField(
            required=False, help_text="date_from, date_to (YYYY-MM-DD) and status (a list)."
        ),
        "bom": serializers.BooleanField(required=False, help_text="Start with a BOM (Excel)."),
    },
)


class ExportJobInputSerializer(StrictSerializer):
    """The fields a job request may carry; the service checks their values (EXPORT_JOB_INPUT
    documents them)."""

    type = AsSent()
    filters = AsSent()
    bom = AsSent()


class ExportJobListView(TenantAPIView):
    """Background exports, newest first."""

    model = Export
    serializer_class = ExportJobSerializer
    scopes = {"get": Scope.EXPORTS_CREATE, "post": Scope.EXPORTS_CREATE}
    # A restaurant pending deletion still takes its data with it.
    allowed_while_closing = True

    @extend_schema(operation_id="export_jobs_list", responses=ExportJobSerializer(many=True))
    def get(self, request: Request) -> Response:
        return self.paginated(self.get_queryset(), ExportJobSerializer)

    @extend_schema(request=EXPORT_JOB_INPUT, responses={201: ExportJobSerializer})
    def post(self, request: Request) -> Response:
        data = self.parse(ExportJobInputSerializer)
        export = services.export_request(
            actor=self.actor,
            export_type=data.get("type"),
            filters=data.get("filters"),
            bom=data.get("bom", False),
            dashboard_url=request.build_absolute_uri(reverse("dashboard:exports")),
        )
        return Response(ExportJobSerializer(export).data, status=status.HTTP_201_CREATED)


class ExportJobDetailView(TenantAPIView):
    model = Export
    serializer_class = ExportJobDetailSerializer
    scopes = {"get": Scope.EXPORTS_CREATE}

    def get(self, request: Request, pk: int) -> Response:
        export = self.get_object()
        return Response(ExportJobDetailSerializer(export, context={"view": self}).data)
