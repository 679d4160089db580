"""OpenAPI links between operations whose paths do not say how they relate (a category is
created under its menu but addressed on its own; an order placed at checkout is read by its
public id). Clients follow them, and so does the schema fuzzing's stateful phase."""

from __future__ import annotations

from typing import Any

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
