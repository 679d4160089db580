"""The OpenAPI document's own conventions, applied to every operation.

- :class:`ApiAutoSchema` documents the error answers each operation can give, in the one
  error shape (``Error``; ``ValidationError`` for a 400, with every problem in ``errors``):
  400 where the operation reads a body or parameters, 401 and 403 where it needs
  credentials, 404 where its path names something, 409 where it writes on a restaurant's
  behalf or is known to conflict, 429 where it is rate limited and 503 on all. Each lists
  the codes it answers with. A request body's component is named ``...Request``.
- :func:`add_links`: links between operations whose paths do not say how they relate (a
  category is created under its menu but addressed on its own; an order placed at checkout
  is read by its public id). Clients follow them, and so does the schema fuzzing's stateful
  phase.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import Direction
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The one shape of every API error (``nordkestrel.errors.error_body``)."""

    type = serializers.CharField(help_text="validation_error, not_found, conflict, ...")
    code = serializers.CharField(help_text="Stable and machine-readable, e.g. stale_cart.")
    detail = serializers.CharField(help_text="For people.")
    attr = serializers.CharField(
        allow_null=True, help_text="The field at fault (items.0.price), or null."
    )


class ErrorItemSerializer(serializers.Serializer):
    """One problem of a request: the check that failed, for people, and the field at fault."""

    code = serializers.CharField(help_text="Stable and machine-readable, e.g. required.")
    detail = serializers.CharField(help_text="For people.")
    attr = serializers.CharField(
        allow_null=True, help_text="The field at fault (items.0.price), or null for the whole."
    )


class ValidationErrorSerializer(ErrorSerializer):
    """A refused request (400): the first problem, as in every error, and all of them."""

    # A declared field, not Serializer.errors: DRF moves it into the serializer's fields.
    errors = ErrorItemSerializer(  # type: ignore[assignment]
        many=True, help_text="Every problem found, the first one first; never empty."
    )


UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

# The codes of conflicts an operation is known to answer (409), besides those of every write.
CONFLICTS: dict[str, tuple[str, ...]] = {
    "menu_versions_rollback_create": ("already_live",),
    "orders_status_create": ("illegal_transition",),
    "orders_cancel_create": ("illegal_transition",),
    "order_refunds_create": (
        "not_refundable", "fully_refunded", "exceeds_refundable", "idempotency_key_reused",
    ),
    "payouts_instant": (
        "not_connected", "payouts_disabled", "instant_unavailable",
        "exceeds_instant_available", "idempotency_key_reused", "payout_conflict",
    ),
    "payments_onboarding_link": ("not_connected", "account_disconnected"),
    "promotions_create": ("code_taken",),
    "promotions_partial_update": ("code_taken", "code_in_use"),
    "restaurant_deletion_create": ("deletion_pending", "restaurant_inactive"),
    "restaurant_deletion_destroy": ("deletion_not_pending", "purge_started"),
    "staff_create": ("conflict",),
    "staff_partial_update": ("last_owner",),
    "staff_deactivate_create": ("last_owner",),
    "storefront_checkout": ("stale_cart", "slot_full", "idempotency_key_reused"),
    "storefront_order_payment": ("not_payable", "cards_unavailable"),
}  # fmt: skip
# Storefront operations rate limited per address (checkout, promotion codes); every
# operation that reads credentials is limited too, by refused credentials per address.
RATE_LIMITED = frozenset({"storefront_quote", "storefront_checkout", "storefront_order_payment"})
# What a write may meet: a concurrent change that broke a constraint (nordkestrel.outage)
# and, on a restaurant's behalf, the restaurant pending deletion unless the view still runs
# then (tenants.closing.CLOSING_CODE, which the kernel may not import; tests/schema pins it).
CHANGED_MEANWHILE_CODE = "changed_meanwhile"
CLOSING_CODE = "restaurant_pending_deletion"

RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before repeating the request.",
        "schema": {"type": "integer", "minimum": 1},
    }
}

# status -> (what it means, its codes, an example body)
ERRORS: dict[int, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    400: (
        "The request was refused; `errors` lists every problem found.",
        (
            "the check a field failed (required, invalid, null, blank, max_length, "
            "min_value, max_value, invalid_choice, does_not_exist, ...)",
            "read_only", "parse_error",
        ),
        {
            "type": "validation_error", "code": "required",
            "detail": "This field is required.", "attr": "name",
            "errors": [
                {"code": "required", "detail": "This field is required.", "attr": "name"},
                {"code": "invalid", "detail": "A valid number is required.",
                 "attr": "items.0.price"},
            ],
        },
    ),
    401: (
        "No credentials, or credentials that are not valid; `WWW-Authenticate` says which "
        "scheme to use.",
        (
            "not_authenticated", "invalid_header", "invalid_token", "token_expired",
            "token_not_yet_valid", "invalid_issuer", "invalid_authorized_party",
            "unknown_key", "keys_unavailable",
        ),
        {"type": "authentication_error", "code": "token_expired",
         "detail": "The token has expired.", "attr": None},
    ),
    403: (
        "The credentials are valid but do not allow this.",
        (
            "permission_denied", "reverification_required", "session_pending",
            "no_organization", "unknown_organization", "not_on_roster", "restaurant_suspended",
        ),
        {"type": "permission_denied", "code": "permission_denied",
         "detail": "Your role does not allow this.", "attr": None},
    ),
    404: (
        "Nothing answers to this path (no such object, or one of another restaurant), or the "
        "cursor points nowhere.",
        ("not_found",),
        {"type": "not_found", "code": "not_found", "detail": "Not found.", "attr": None},
    ),
    409: (
        "The request conflicts with the current state; nothing was changed.",
        (),
        {"type": "conflict", "code": CHANGED_MEANWHILE_CODE,
         "detail": "Something this request relies on changed meanwhile. Try again.",
         "attr": None},
    ),
    429: (
        "Too many requests; repeat after `Retry-After` seconds.",
        ("rate_limited",),
        {"type": "rate_limited", "code": "rate_limited",
         "detail": "Too many requests. Try again later.", "attr": None},
    ),
    503: (
        "A dependency is down or busy, no fault of the request; nothing of it was written. "
        "Repeat it after `Retry-After` seconds (with its idempotency key, if it had one).",
        ("database_unavailable", "write_conflict", "rate_limit_unavailable", "unavailable"),
        {"type": "unavailable", "code": "database_unavailable",
         "detail": "The service is unavailable. Try again shortly.", "attr": None},
    ),
}  # fmt: skip


def _description(status: int, codes: tuple[str, ...]) -> str:
    meaning = ERRORS[status][0]
    return f"{meaning} Codes: {', '.join(dict.fromkeys(codes))}." if codes else meaning


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, with the error answers and ``...Request`` bodies."""

    def get_serializer_name(self, serializer: Any, direction: Direction) -> str:
        name = super().get_serializer_name(serializer, direction)
        if direction == "request":
            # drf-spectacular adds "Request": CheckoutRequest, not CheckoutRequestRequest.
            name = name.removesuffix("Serializer").removesuffix("Request")
        return name

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        declared = {int(status) for status in responses if str(status)[0] in "45"}
        for status, codes in self._errors(operation, declared).items():
            responses[str(status)] = self._error_response(status, codes)
        return operation

    def _errors(self, operation: dict[str, Any], declared: set[int]) -> dict[int, tuple[str, ...]]:
        """Status -> the codes of each error answer ``operation`` documents."""
        operation_id = operation["operationId"]
        parameters = operation.get("parameters", [])
        locations = {parameter["in"] for parameter in parameters}
        security = operation.get("security", [])
        authenticated = bool(security) and all(security)
        errors = {status: ERRORS[status][1] for status in declared if status in ERRORS}
        if "requestBody" in operation or locations & {"query", "header"}:
            errors[400] = ERRORS[400][1]
        if authenticated:
            errors |= {401: ERRORS[401][1], 403: ERRORS[403][1], 429: ERRORS[429][1]}
        # A list's cursor that points nowhere answers 404 too (staff.api_base).
        if "path" in locations or any(parameter["name"] == "cursor" for parameter in parameters):
            errors[404] = ERRORS[404][1]
        conflicts = CONFLICTS.get(operation_id, ())
        writes = authenticated and self.method in UNSAFE_METHODS
        if writes and not getattr(self.view, "allowed_while_closing", False):
            conflicts = (*conflicts, CLOSING_CODE)
        if conflicts or writes or 409 in declared:
            errors[409] = (*conflicts, CHANGED_MEANWHILE_CODE)
        if operation_id in RATE_LIMITED:
            errors[429] = ERRORS[429][1]
        errors[503] = ERRORS[503][1]
        return dict(sorted(errors.items()))

    def _error_response(self, status: int, codes: tuple[str, ...]) -> dict[str, Any]:
        serializer = ValidationErrorSerializer if status == 400 else ErrorSerializer
        example = ERRORS[status][2]
        response: dict[str, Any] = {
            "description": _description(status, codes),
            "content": {
                "application/json": {
                    "schema": self.resolve_serializer(serializer, "response").ref,
                    "examples": {example["code"]: {"value": example}},
                }
            },
        }
        if status in (429, 503):
            response["headers"] = RETRY_AFTER
        return response


# (operationId, status) -> {link name: (target operationId, {parameter: runtime expression})}
LINKS: dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]] = {
    ("menus_categories_create", "201"): {
        "UpdateCategory": ("categories_partial_update", {"id": "$response.body#/id"}),
        "ReorderCategoryItems": ("categories_reorder_create", {"id": "$response.body#/id"}),
        "DeleteCategory": ("categories_destroy", {"id": "$response.body#/id"}),
    },
    ("modifier_groups_modifiers_create", "201"): {
        "UpdateModifier": ("modifiers_partial_update", {"id": "$response.body#/id"}),
        "SetModifierSoldOut": ("modifiers_sold_out_create", {"id": "$response.body#/id"}),
        "DeleteModifier": ("modifiers_destroy", {"id": "$response.body#/id"}),
    },
    ("items_create", "201"): {
        "UploadItemImage": ("items_image_create", {"id": "$response.body#/id"}),
    },
    # A webhook endpoint is created once and then addressed by its id; a test message is a
    # delivery addressed under its endpoint.
    ("webhook_endpoints_create", "201"): {
        "ReadWebhookEndpoint": ("webhook_endpoints_retrieve", {"id": "$response.body#/id"}),
        "UpdateWebhookEndpoint": (
            "webhook_endpoints_partial_update",
            {"id": "$response.body#/id"},
        ),
        "RotateWebhookSecret": (
            "webhook_endpoints_rotate_secret_create",
            {"id": "$response.body#/id"},
        ),
        "SendWebhookTest": ("webhook_endpoints_test_create", {"id": "$response.body#/id"}),
        "RecoverWebhookDeliveries": (
            "webhook_endpoints_recover_create",
            {"id": "$response.body#/id"},
        ),
        "ListWebhookDeliveries": (
            "webhook_endpoint_deliveries_list",
            {"endpoint_pk": "$response.body#/id"},
        ),
        "DeleteWebhookEndpoint": ("webhook_endpoints_destroy", {"id": "$response.body#/id"}),
    },
    ("webhook_endpoints_test_create", "202"): {
        "ReadWebhookDelivery": (
            "webhook_endpoints_deliveries_retrieve",
            {"endpoint_pk": "$response.body#/endpoint", "id": "$response.body#/id"},
        ),
        "ResendWebhookDelivery": (
            "webhook_endpoints_deliveries_resend_create",
            {"endpoint_pk": "$response.body#/endpoint", "id": "$response.body#/id"},
        ),
    },
    ("storefront_checkout", "201"): {
        "ReadOrder": ("storefront_order", {"public_id": "$response.body#/public_id"}),
        "PayOrder": ("storefront_order_payment", {"public_id": "$response.body#/public_id"}),
    },
}


def add_links(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the links above, for the operations present."""
    operations = {
        operation["operationId"]: operation
        for item in result.get("paths", {}).values()
        for operation in item.values()
    }
    for (source, status), links in LINKS.items():
        response = operations.get(source, {}).get("responses", {}).get(status)
        if response is None:
            continue
        response["links"] = {
            name: {"operationId": target, "parameters": parameters}
            for name, (target, parameters) in links.items()
            if target in operations
        }
    return result
