"""What ``OPTIONS`` answers on every API view (DRF's ``DEFAULT_METADATA_CLASS``).

DRF's ``SimpleMetadata`` describes the fields of ``POST``/``PUT`` by calling the view's
``get_serializer()`` and, for ``PUT``, its ``get_object()``: views here keep their serializers
to themselves (no ``serializer_class``) and some address no model, so that answered 500; and
looking an object up for ``OPTIONS`` would answer differently for an id that exists. This
answer is the view's description only, the same for every caller and every id: its name, its
description and the media types it reads and writes. The ``Allow`` header lists the methods;
fields are described by the OpenAPI schema (``/api/v1/schema/``).

Authentication and permissions run before it as for any method: a tenant view answers 401
without credentials and 403 to a role that may use none of its methods
(``staff.api_base.HasDeclaredScope``).
"""

from __future__ import annotations

from typing import Any

from rest_framework.metadata import BaseMetadata
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request


class ViewDescription(BaseMetadata):
    def determine_metadata(self, request: Request, view: Any) -> dict[str, Any]:
        # The description is JSON whatever the view renders otherwise (the schema's YAML,
        # the docs page's HTML template).
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
        return {
            "name": view.get_view_name(),
            "description": view.get_view_description(),
            "renders": [renderer.media_type for renderer in view.renderer_classes],
            "parses": [parser.media_type for parser in view.parser_classes],
        }
