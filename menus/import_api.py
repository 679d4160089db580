"""API: import menus from a JSON or CSV file (multipart, field ``file``), or dry-run it.

``?dry_run=true`` does the same work and rolls it back, so it reports what the import would
create and update. Imports are rate-limited per client IP: each parses and writes up to
thousands of rows.
"""

from __future__ import annotations

from django.core.files.uploadedfile import UploadedFile
from django.utils.decorators import method_decorator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from menus import import_merge, import_parse
from nordkestrel.errors import InvalidInput
from nordkestrel.ratelimit import OnOutage, rate_limit
from nordkestrel.serializers import StrictSerializer
from nordkestrel.uploads import declared_too_large
from staff.api_base import TenantAPIView
from staff.roles import Scope

TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off", ""}
DRY_RUN_HELP = "Report what the import would change, and write nothing."


class ImportUploadSerializer(StrictSerializer):
    file = serializers.FileField(
        help_text="A .json or .csv file of at most 2 MB (see the import format in the docs)."
    )


_COUNTS = inline_serializer(
    "MenuImportCounts",
    {kind: serializers.IntegerField() for kind in import_merge.KINDS},
)
ImportReportSerializer = inline_serializer(
    "MenuImportReport",
    {
        "dry_run": serializers.BooleanField(),
        "created": _COUNTS,
        "updated": _COUNTS,
        "unchanged": _COUNTS,
    },
)


def _dry_run(request: Request) -> bool:
    value = request.query_params.get("dry_run", "").strip().lower()
    if value not in TRUE | FALSE:
        raise InvalidInput("Use dry_run=true or dry_run=false.", attr="dry_run")
    return value in TRUE


def _uploaded_file(view: TenantAPIView) -> UploadedFile:
    """The ``file`` part; a body too large to hold an acceptable file is refused unread."""
    if declared_too_large(view.request, import_parse.MAX_BYTES):
        raise InvalidInput(
            f"The file is larger than {import_parse.MAX_BYTES // (1024 * 1024)} MB.",
            code="too_large",
            attr=import_parse.FILE_ATTR,
        )
    upload: UploadedFile = view.parse(ImportUploadSerializer)[import_parse.FILE_ATTR]
    return upload


class MenuImportView(TenantAPIView):
    """Merge a JSON or CSV file into the draft menus; nothing is deleted.

    Rows match by name; the answer counts what was (or, with ``dry_run``, would be)
    created, updated and left unchanged. Errors name the place: ``row 12: price`` or
    ``menus.0.categories.1.items.3.price``.
    """

    scopes = {"post": Scope.MENUS_WRITE}
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": ImportUploadSerializer},
        parameters=[OpenApiParameter("dry_run", OpenApiTypes.BOOL, description=DRY_RUN_HELP)],
        responses=ImportReportSerializer,
    )
    @method_decorator(
        rate_limit(
            key="ip", rate="30/h", group="menu-import", method="POST", on_outage=OnOutage.ALLOW
        )
    )
    def post(self, request: Request) -> Response:
        dry_run = _dry_run(request)
        upload = _uploaded_file(self)
        data = import_parse.parse_file(
            name=upload.name or "",
            content=upload.read(import_parse.MAX_BYTES + 1),
            currency=self.actor.restaurant.currency,
        )
        return Response(import_merge.import_menu(actor=self.actor, data=data, dry_run=dry_run))
