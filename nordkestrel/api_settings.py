"""The API's settings: Django REST framework and the OpenAPI document (drf-spectacular).

Imported by nordkestrel/settings.py; apps are named here only as strings, like there.
"""

from typing import Any

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["nordkestrel.parsers.JSONParser"],
    # OPTIONS describes the view only: never its serializer or an object (nordkestrel/metadata.py).
    "DEFAULT_METADATA_CLASS": "nordkestrel.metadata.ViewDescription",
    "DEFAULT_SCHEMA_CLASS": "nordkestrel.openapi.ApiAutoSchema",
    "EXCEPTION_HANDLER": "nordkestrel.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "Nordkestrel API",
    "DESCRIPTION": "The REST API for restaurant operators and integrators.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Request bodies are components of their own (``ItemRequest``), apart from responses.
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {"schemas": {"CsvFile": {"type": "string", "description": "CSV."}}},
    # The storefront API (on storefront hosts) is in the document too, under its own tag.
    "DEFAULT_GENERATOR_CLASS": "storefront.openapi.ApiSchemaGenerator",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "storefront.openapi.tag_storefront_paths",
        "nordkestrel.openapi.add_links",
    ],
    # Several models have a "status"; each enum gets its own name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.models.Status",
        "ExportStatusEnum": "exports.models.Export.Status",
        "FulfilmentEnum": "orders.models.Fulfilment",
        "PaymentMethodEnum": "orders.models.PaymentMethod",
        "ApiKeyStatusEnum": "apikeys.models.ApiKey.Status",
        "WebhookDeliveryStatusEnum": "webhooks.models.Delivery.Status",
        # The levels an API key's grant offers per resource (apikeys/grants.py).
        "GrantLevelEnum": ["none", "read", "write"],
        "GrantReadWriteEnum": ["read", "write"],
        "GrantReadEnum": ["none", "read"],
        "GrantWriteEnum": ["none", "write"],
    },
}
