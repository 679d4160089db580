"""API: the restaurant's event log (``/api/v1/events``) and the catalogue of event types
(``/api/v1/events/types``), to catch up without webhooks or to check what a webhook said.

Every reader of the restaurant may read it (``restaurant:read``: every role and every API
key); each event is then the reader's to see as its webhook would be: events of a type whose
scope the reader lacks are left out by the query (so pages stay full), and payload fields
marked with a scope the reader lacks are stripped (``events.visible_payload``). An item is
the body of the event's webhook message (``{type, timestamp, data}``) with the event's ``id``
(the ``webhook-id`` of its deliveries) and ``version``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from drf_spectacular.utils import inline_serializer as shape
from rest_framework import exceptions, serializers
from rest_framework.pagination import Cursor
from rest_framework.request import Request
from rest_framework.response import Response

from events.models import Event
from nordkestrel import events
from nordkestrel.errors import InvalidInput, error_item
from staff.api_base import TenantAPIView, TenantCursorPagination
from staff.roles import Scope
from webhooks import fanout, messages

# More type names than the catalogue holds is a mistake, not a filter.
MAX_TYPES = 50
COMPONENT_PREFIX = "Event_"


def component_name(type_name: str) -> str:
    """The OpenAPI component of an event type's message (``Event_order_placed``)."""
    return COMPONENT_PREFIX + type_name.replace(".", "_")


class EventSerializer(serializers.Serializer):
    """One event: the body of its webhook message (``type``, ``timestamp``, ``data``), with
    its ``id`` and ``version``."""

    id = serializers.UUIDField(
        help_text="The event's id, also the webhook-id header of its webhook deliveries "
        "(deduplicate on it). A UUIDv7: ids sort by time."
    )
    type = serializers.CharField(help_text="The event type (GET /api/v1/events/types).")
    version = serializers.IntegerField(min_value=1, help_text="The version of the type's payload.")
    timestamp = serializers.DateTimeField(help_text="When it happened (ISO 8601, UTC).")
    # A declared field, not Serializer.data: DRF moves it into the serializer's fields.
    data = serializers.DictField(  # type: ignore[assignment]
        help_text="The payload, as you may see it: it follows the `data` of the component "
        "`Event_<type>` (`Event_order_placed` for `order.placed`), without the fields "
        "marked `x-scope` when you lack that scope."
    )


class EventTypeSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="e.g. order.placed")
    version = serializers.IntegerField(min_value=1)
    description = serializers.CharField()
    scope = serializers.CharField(help_text="The scope a reader needs to see these events.")
    restricted_fields = serializers.DictField(
        child=serializers.CharField(),
        help_text="Payload fields (dotted paths) only readers holding the named scope see.",
    )
    schema = serializers.DictField(
        help_text="The JSON Schema (draft 2020-12) of the payload; fields marked `x-scope` "
        "are left out for readers without that scope."
    )


def readable_types(scopes: Iterable[str]) -> list[str]:
    """The names of the event types a reader holding ``scopes`` may see."""
    held = set(scopes)
    return [entry.name for entry in events.catalogue() if entry.scope in held]


def item(row: Event, scopes: frozenset[str]) -> dict[str, Any] | None:
    """The event as the reader may see it (None: not theirs to see)."""
    event = row.as_event()
    data = events.visible_payload(event, scopes)
    if data is None:
        return None
    document = messages.document(event.type, event.occurred_at, data)
    return {
        "id": fanout.message_id(event.id),
        "type": document["type"],
        "version": event.version,
        "timestamp": document["timestamp"],
        "data": document["data"],
    }


def retention_start(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=settings.EVENT_RETENTION_DAYS)


@dataclass(frozen=True)
class EventFilters:
    types: list[str]
    since: datetime | None
    until: datetime | None


def _values(params: Mapping[str, Any], key: str) -> list[str]:
    getlist = getattr(params, "getlist", None)
    raw = getlist(key) if getlist else [params[key]] if key in params else []
    return [part.strip() for value in raw for part in str(value).split(",") if part.strip()]


def _moment(params: Mapping[str, Any], key: str, problems: list[dict[str, Any]]) -> Any:
    values = _values(params, key)
    if len(values) > 1:
        problems.append(error_item("invalid", "Give this filter once.", key))
        return None
    if not values:
        return None
    try:
        parsed = parse_datetime(values[0])
        if parsed is not None:
            # No offset: UTC.
            parsed = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        detail = "Use an ISO 8601 date and time, like 2026-05-01T12:00:00Z."
        problems.append(error_item("invalid", detail, key))
    return parsed


def parse_filters(params: Mapping[str, Any], scopes: Iterable[str]) -> EventFilters:
    """``type`` (repeated or comma-separated), ``since`` and ``until``; every problem found
    is answered at once (400)."""
    problems: list[dict[str, Any]] = []
    readable = readable_types(scopes)
    names = _values(params, "type")
    if len(names) > MAX_TYPES:
        problems.append(error_item("invalid", f"At most {MAX_TYPES} types.", "type"))
        names = []
    chosen: list[str] = []
    for index, name in enumerate(names):
        try:
            entry = events.catalogue_entry(name)
        except LookupError:
            problems.append(
                error_item(
                    "unknown_event_type",
                    f"{name!r} is not an event type (GET /api/v1/events/types lists them).",
                    f"type.{index}",
                )
            )
            continue
        if entry.name not in readable:
            problems.append(
                error_item(
                    "scope_not_held",
                    f"{name} needs {entry.scope}, which you do not hold.",
                    f"type.{index}",
                )
            )
        elif name not in chosen:
            chosen.append(name)
    since, until = _moment(params, "since", problems), _moment(params, "until", problems)
    if since is not None and until is not None and until < since:
        problems.append(error_item("invalid", "Must not be before since.", "until"))
    if problems:
        first = problems[0]
        raise InvalidInput(
            str(first["detail"]), code=str(first["code"]), attr=first["attr"], errors=problems
        )
    return EventFilters(types=chosen or readable, since=since, until=until)


class EventCursorPagination(TenantCursorPagination):
    """Newest first: by the time it happened, then by id."""

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> tuple[str, ...]:
        return ("-occurred_at", "-id")

    def decode_cursor(self, request: Request) -> Cursor | None:
        cursor = super().decode_cursor(request)
        # A forged position would reach the database as a malformed timestamp.
        if cursor is not None and cursor.position is not None:
            try:
                position = parse_datetime(str(cursor.position))
                usable = position is not None and position.tzinfo is not None
                if usable and position is not None:
                    position.astimezone(UTC)
            except (ValueError, OverflowError):
                usable = False
            if not usable:
                raise exceptions.NotFound(self.invalid_cursor_message)
        return cursor


EVENT_FILTERS = [
    OpenApiParameter(
        "type",
        str,
        many=True,
        description="Only events of these types: repeat it (`type=order.placed&"
        "type=order.cancelled`) or separate with commas. A type you may not read is a 400 "
        "(`scope_not_held`), an unknown one too (`unknown_event_type`).",
    ),
    OpenApiParameter(
        "since",
        OpenApiTypes.DATETIME,
        description="Only events that happened at or after this time (ISO 8601; without an "
        "offset, UTC).",
    ),
    OpenApiParameter(
        "until", OpenApiTypes.DATETIME, description="Only events that happened before this time."
    ),
]


class _EventLog(TenantAPIView):
    abstract = True
    model = Event
    serializer_class = EventSerializer

    def visible(self, queryset: QuerySet, types: list[str]) -> QuerySet:
        return queryset.filter(type__in=types, occurred_at__gte=retention_start())

    def scopes_held(self) -> frozenset[str]:
        return frozenset(str(scope) for scope in self.actor.scopes)


class EventListView(_EventLog):
    """The restaurant's events of the last 30 days, newest first."""

    pagination_class = EventCursorPagination
    scopes = {"get": Scope.RESTAURANT_READ}

    def scope_queryset(self, queryset: QuerySet) -> QuerySet:
        filters = parse_filters(self.request.query_params, self.scopes_held())
        queryset = self.visible(queryset, filters.types)
        if filters.since is not None:
            queryset = queryset.filter(occurred_at__gte=filters.since)
        if filters.until is not None:
            queryset = queryset.filter(occurred_at__lt=filters.until)
        return queryset

    @extend_schema(
        operation_id="events_list",
        parameters=EVENT_FILTERS,
        responses=EventSerializer(many=True),
        description="The restaurant's events of the last 30 days (how long they are kept), "
        "newest first, that you may read: an event whose type needs a scope you lack is "
        "left out, and payload fields marked with a scope you lack are removed. Each item "
        "is the body of the event's webhook message (`type`, `timestamp`, `data`) with its "
        "`id` (the `webhook-id` of its deliveries) and `version`; its `data` follows the "
        "`data` of the component `Event_<type>` (`.` as `_`: `Event_order_placed`). "
        "To catch up, page from the newest with `since` set to the time of the last event "
        "you handled, and skip the ids you already have.",
    )
    def get(self, request: Request) -> Response:
        scopes = self.scopes_held()
        page = self.paginate_queryset(self.get_queryset()) or []
        items = [found for row in page if (found := item(row, scopes)) is not None]
        return self.get_paginated_response(EventSerializer(items, many=True).data)


class EventDetailView(_EventLog):
    """One event of the last 30 days, if you may read it."""

    scopes = {"get": Scope.RESTAURANT_READ}

    def scope_queryset(self, queryset: QuerySet) -> QuerySet:
        return self.visible(queryset, readable_types(self.scopes_held()))

    @extend_schema(operation_id="events_retrieve", responses=EventSerializer)
    def get(self, request: Request, pk: Any) -> Response:
        row = self.get_queryset().filter(pk=pk).first()
        found = item(row, self.scopes_held()) if row is not None else None
        if found is None:
            raise Http404
        return Response(EventSerializer(found).data)


class EventTypeListView(TenantAPIView):
    """Every event type: its version, description, the scope that sees it and the JSON
    Schema of its payload."""

    serializer_class = EventTypeSerializer
    scopes = {"get": Scope.RESTAURANT_READ}

    @extend_schema(
        operation_id="event_types_list",
        responses=shape("EventTypes", {"results": EventTypeSerializer(many=True)}),
    )
    def get(self, request: Request) -> Response:
        results = [
            {
                "name": entry.name,
                "version": entry.version,
                "description": entry.description,
                "scope": str(entry.scope),
                "restricted_fields": entry.restricted_fields(),
                "schema": entry.schema,
            }
            for entry in events.catalogue()
        ]
        return Response({"results": EventTypeSerializer(results, many=True).data})
