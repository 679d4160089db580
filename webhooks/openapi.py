"""The event catalogue in the OpenAPI document: one component per event type, the body of its
webhook message (``Event_order_placed``: ``type``, ``timestamp``, ``data``), which the events
API's items follow too.

The payload schemas are JSON Schema 2020-12; the document is OpenAPI 3.0, so a ``"type"``
list with ``"null"`` becomes ``nullable: true`` and ``const`` a one-value ``enum``. A field
marked ``x-scope`` (kept: an extension) is not required there, since readers without the
scope never receive it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nordkestrel import events
from webhooks.events_api import component_name

EVENTS_LIST = "events_list"


def openapi_30(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` (JSON Schema 2020-12) as an OpenAPI 3.0 schema object."""
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, list):
            kinds = [kind for kind in value if kind != "null"]
            if len(kinds) == 1:
                converted["type"] = kinds[0]
            else:
                converted["anyOf"] = [{"type": kind} for kind in kinds]
            if "null" in value:
                converted["nullable"] = True
        elif key == "const":
            converted["enum"] = [value]
        elif key == "properties":
            converted[key] = {name: openapi_30(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
            converted[key] = openapi_30(value)
        elif key in ("anyOf", "oneOf", "allOf"):
            converted[key] = [openapi_30(sub) for sub in value]
        else:
            converted[key] = value
    restricted = {
        name for name, sub in schema.get("properties", {}).items() if events.SCOPE_KEYWORD in sub
    }
    if restricted and "required" in converted:
        converted["required"] = [name for name in converted["required"] if name not in restricted]
        if not converted["required"]:
            del converted["required"]
    for name in restricted:
        sub = converted["properties"][name]
        note = f"Only for readers holding {sub[events.SCOPE_KEYWORD]}."
        sub["description"] = f"{sub['description']} {note}" if "description" in sub else note
    return converted


def message_component(entry: events.EventType) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"{entry.description} Version {entry.version}; needs {entry.scope}. "
        f"The body of a `{entry.name}` webhook message; an item of GET /api/v1/events of "
        "this type has these fields, and its `id` and `version`.",
        "properties": {
            "type": {"type": "string", "enum": [entry.name]},
            "timestamp": {"type": "string", "format": "date-time"},
            "data": openapi_30(entry.schema),
        },
        "required": ["type", "timestamp", "data"],
        "x-event-version": entry.version,
        "x-scope": str(entry.scope),
    }


def add_event_components(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: a component per event type, and the type names
    as the events list's ``type`` filter's values."""
    catalogue = events.catalogue()
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for entry in catalogue:
        schemas[component_name(entry.name)] = message_component(entry)
    result["components"]["schemas"] = dict(sorted(schemas.items()))
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or operation.get("operationId") != EVENTS_LIST:
                continue
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "type" and parameter["in"] == "query":
                    parameter["schema"]["items"]["enum"] = [entry.name for entry in catalogue]
    return result
