"""CSV exports over HTTP: the list of export types, and one export streamed as it is read.

``GET /api/v1/exports/<type>.csv`` checks the filters, counts against the rate limit and
writes the ``export.created`` audit event in the request's transaction, which commits when
the view returns; only then does the body stream, from its own transaction (see
:func:`exports.copy.stream_csv`). An error before streaming is a JSON error like any other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, QueryDict, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_spectacular.utils import inline_serializer as shape
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from exports import copy, registry
from nordkestrel.errors import InvalidInput
from nordkestrel.ratelimit import OnOutage, limit
from staff.api_base import TenantAPIView
from staff.roles import Scope

# Query parameters of a streamed export besides the filters.
BOM_PARAMETER = "bom"
RATE_GROUP = "exports"
RATE_KEY = "exports.api.rate_key"


def rate_key(group: str, request: HttpRequest) -> str:
    """Exports are counted per restaurant and staff member (django-ratelimit key function)."""
    actor: Any = getattr(request, "user", None)
    return f"{actor.restaurant.pk}:{actor.member.pk}"


class ErrorsAsJSON(BaseContentNegotiation):
    """The CSV body does not go through a renderer, so ``Accept: text/csv`` must not be a
    406: errors are answered in the API's JSON shape whatever the client accepts."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


def _bom(params: QueryDict) -> bool:
    values = params.getlist(BOM_PARAMETER)
    if len(values) > 1:
        raise InvalidInput("Give this parameter once.", attr=BOM_PARAMETER)
    value = (values[0] if values else "").strip().lower()
    if value not in ("", "0", "1", "true", "false"):
        raise InvalidInput("Use 1 (for Excel) or 0.", attr=BOM_PARAMETER)
    return value in ("1", "true")


def _reject_unknown_parameters(params: Mapping[str, Any], export_type: registry.ExportType) -> None:
    allowed = {*registry.FILTER_PARAMETERS, BOM_PARAMETER}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidInput(
            f"Unknown parameter; the {export_type.name} export takes "
            f"{', '.join([*export_type.filter_names, BOM_PARAMETER])}.",
            code="unknown_parameter",
            attr=unknown[0],
        )


EXPORT_PARAMETERS = [
    OpenApiParameter(
        "export_type",
        str,
        OpenApiParameter.PATH,
        enum=[export.name for export in registry.export_types()],
        description="Which export (the list at /api/v1/exports).",
    ),
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="In the restaurant's zone."),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="Inclusive."),
    OpenApiParameter(
        "status", str, many=True, description="Orders and order lines: repeat or use commas."
    ),
    OpenApiParameter(BOM_PARAMETER, OpenApiTypes.BOOL, description="Start with a UTF-8 BOM."),
]


class ExportCSVView(TenantAPIView):
    """One export as CSV (UTF-8, header row, RFC 4180 quoting), streamed in constant memory.

    Times are ISO 8601 in the restaurant's time zone, money is a decimal string in major
    units with a currency column, and text cells that could start a spreadsheet formula begin
    with ``'``. Audited and rate-limited per staff member.
    """

    scopes = {"get": Scope.EXPORTS_CREATE}
    content_negotiation_class = ErrorsAsJSON
    # A HEAD would be audited and counted as an export that never downloads anything.
    http_method_names = ["get", "options"]

    @extend_schema(
        operation_id="exports_csv",
        parameters=EXPORT_PARAMETERS,
        responses={
            (200, "text/csv"): OpenApiResponse(
                {"$ref": "#/components/schemas/CsvFile"}, description="The CSV file."
            ),
        },
    )
    def get(self, request: Request, export_type: str) -> StreamingHttpResponse:
        export = registry.get(export_type)
        params = request.query_params
        _reject_unknown_parameters(params, export)
        bom = _bom(params)
        filters = registry.parse_filters(export, params)
        limit(
            request._request,
            group=RATE_GROUP,
            rate=settings.EXPORT_RATE,
            key=RATE_KEY,
            on_outage=OnOutage.ALLOW,
        )
        actor = self.actor
        copy.record_export(actor=actor, export_type=export, filters=filters, bom=bom)
        restaurant = actor.restaurant
        response = StreamingHttpResponse(
            copy.stream_csv(restaurant=restaurant, export_type=export, filters=filters, bom=bom),
            content_type=copy.CONTENT_TYPE,
        )
        name = copy.file_name(restaurant, export)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response


_COLUMNS = shape(
    "ExportColumn",
    {"name": serializers.CharField(), "description": serializers.CharField()},
    many=True,
)
_TYPES = shape(
    "ExportType",
    {
        "name": serializers.CharField(),
        "label": serializers.CharField(),
        "description": serializers.CharField(),
        "filters": serializers.ListField(child=serializers.CharField()),
        "columns": _COLUMNS,
        "url": serializers.CharField(),
    },
    many=True,
)


class ExportListView(TenantAPIView):
    """The export types, their columns and the filters each takes."""

    scopes = {"get": Scope.EXPORTS_CREATE}

    @extend_schema(
        operation_id="exports_list",
        responses=shape("ExportTypes", {"results": _TYPES}),
    )
    def get(self, request: Request) -> Response:
        results = [
            {
                "name": export.name,
                "label": export.label,
                "description": export.description,
                "filters": export.filter_names,
                "columns": [
                    {"name": column.name, "description": column.description}
                    for column in export.columns
                ],
                "url": reverse("api-export-csv", kwargs={"export_type": export.name}),
            }
            for export in registry.export_types()
        ]
        return Response({"results": results})
