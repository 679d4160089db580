"""API: upload an item's image or the restaurant's logo (multipart, field ``image``).

Uploads cost CPU (decoding) and storage, so they are rate-limited twice, once per client IP and
once per restaurant. The restaurant is known only after authentication, so both limits are
checked inside the view, before the object lookup and before the body is parsed.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from menus import image_services, images
from menus.models import Item
from nordkestrel.ratelimit import OnOutage, limit
from nordkestrel.serializers import StrictSerializer
from nordkestrel.uploads import declared_too_large
from staff.api_base import TenantAPIView
from staff.roles import Scope


@extend_schema_field(OpenApiTypes.BINARY)
class UploadedFileField(serializers.FileField):
    """A file part of the request (the schema says binary, not a URL)."""


class ImageUploadSerializer(StrictSerializer):
    image = UploadedFileField(help_text="A JPEG, PNG or WebP image of at most 5 MB.")


class StoredImageSerializer(serializers.Serializer):
    image = serializers.CharField(help_text="The storage key.")
    url = serializers.CharField(help_text="Where a browser fetches the stored image.")


def _restaurant_key(group: str, request: HttpRequest) -> str:
    # Set at admission, by the chain both front doors share (staff.access).
    return str(request.restaurant.pk)  # type: ignore[attr-defined]


def check_upload_rate(request: HttpRequest) -> None:
    """Count this upload per client IP and per restaurant; past either limit, 429.

    Takes Django's request, so a dashboard upload view shares the same budgets.
    """
    limits = (
        ("image-upload-ip", "ip", settings.MENU_UPLOAD_RATE_PER_IP),
        ("image-upload-restaurant", _restaurant_key, settings.MENU_UPLOAD_RATE_PER_RESTAURANT),
    )
    for group, key, rate in limits:
        # Staff uploads: with the counter down they go on (the uploader is known).
        limit(request, group=group, key=key, rate=rate, on_outage=OnOutage.ALLOW)


def uploaded_image(view: TenantAPIView) -> UploadedFile:
    """The ``image`` part; a body too large to hold one is refused before it is parsed."""
    if declared_too_large(view.request, images.MAX_UPLOAD_BYTES):
        raise images.too_large()
    upload: UploadedFile = view.parse(ImageUploadSerializer)[images.ATTR]
    return upload


def stored(key: str) -> Response:
    return Response({"image": key, "url": images.image_url(key)})


UPLOAD_SCHEMA = extend_schema(
    request={"multipart/form-data": ImageUploadSerializer}, responses=StoredImageSerializer
)


class ItemImageView(TenantAPIView):
    model = Item
    scopes = {"post": Scope.MENUS_WRITE}
    parser_classes = [MultiPartParser]

    @UPLOAD_SCHEMA
    def post(self, request: Request, pk: int) -> Response:
        check_upload_rate(request._request)
        item = self.get_object()
        item = image_services.item_set_image(
            actor=self.actor, item=item, upload=uploaded_image(self)
        )
        return stored(item.image)


class RestaurantLogoView(TenantAPIView):
    scopes = {"post": Scope.RESTAURANT_WRITE}
    parser_classes = [MultiPartParser]

    @UPLOAD_SCHEMA
    def post(self, request: Request) -> Response:
        check_upload_rate(request._request)
        restaurant = image_services.restaurant_set_logo(
            actor=self.actor, upload=uploaded_image(self)
        )
        return stored(restaurant.logo)
