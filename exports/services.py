"""Background exports: ask for one, hand out its file, and let old files go.

``export_request`` checks the actor, the type and the filters, counts the restaurant's budget
(``EXPORT_RATE_PER_RESTAURANT``), saves the record, audits it (``export.created``) and enqueues
``exports.tasks.run_export`` once the transaction commits. ``export_download_url`` gives a link
that works for ``EXPORT_LINK_SECONDS``. ``exports_expire`` (a periodic job) deletes files and
records past their 7 days.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from exports import registry, storage
from exports.copy import record_export, require_export
from exports.models import EVERYTHING, Export
from exports.registry import FILTER_PARAMETERS, ExportFilters, ExportType
from nordkestrel.errors import ConflictError, DomainError, InvalidInput, NotFoundError
from nordkestrel.ratelimit import OnOutage, limit
from staff.auth import Actor
from staff.roles import Scope
from tenants.context import tenant_bypass, tenant_context
from tenants.models import Restaurant

logger = logging.getLogger(__name__)

RATE_GROUP = "export-request"
EVERYTHING_LABEL = "Everything (zip of every CSV)"
# Bounds what the expiry job loads into memory at once.
EXPIRE_BATCH = 500


class ExportExpired(DomainError):
    status = 410
    type_ = "gone"
    code = "export_expired"


def retention() -> timedelta:
    return timedelta(days=settings.EXPORT_RETENTION_DAYS)


def is_expired(export: Export, now: Any = None) -> bool:
    """Past its 7 days: refused at once, even before the expiry job has deleted it."""
    return export.expires_at <= (now or timezone.now())


def _filter_params(filters: Any) -> dict[str, str]:
    """A JSON object of filters → the query-parameter form the registry parses."""
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise InvalidInput("Send the filters as an object.", attr="filters")
    params: dict[str, str] = {}
    for key, value in filters.items():
        if key not in FILTER_PARAMETERS:
            raise InvalidInput(
                f"Unknown filter; use {', '.join(FILTER_PARAMETERS)}.", attr=str(key)[:64]
            )
        values = value if isinstance(value, list | tuple) else [value]
        if not all(isinstance(item, str) for item in values):
            raise InvalidInput("Use text values.", attr=key)
        if any(item for item in values):
            params[key] = ",".join(values)
    return params


def _type_filters(export_type: ExportType, params: Mapping[str, str]) -> ExportFilters:
    """The filters of a bundle that apply to one of its types."""
    return registry.parse_filters(
        export_type,
        {key: value for key, value in params.items() if key in export_type.filter_names},
    )


def parse_export(export_type: Any, filters: Any) -> tuple[str, ExportFilters]:
    """The type's name and its validated filters; a 400 naming the field otherwise.

    The bundle (``everything``) takes a date range, applied to every type that has dates.
    """
    if not isinstance(export_type, str) or not export_type:
        raise InvalidInput("Choose what to export.", attr="type")
    params = _filter_params(filters)
    if export_type == EVERYTHING:
        if "status" in params:
            raise InvalidInput("The everything export has no status filter.", attr="status")
        dated = [t for t in registry.export_types() if t.date_column]
        parsed = [_type_filters(t, params) for t in dated]
        return EVERYTHING, parsed[0] if parsed else ExportFilters()
    try:
        chosen = registry.get(export_type)
    except NotFoundError as error:
        raise InvalidInput(error.detail, code="unknown_export", attr="type") from None
    return chosen.name, registry.parse_filters(chosen, params)


def filters_for(export: Export, export_type: ExportType) -> ExportFilters:
    """The stored filters of ``export`` as they apply to one of its types."""
    stored = {
        key: value for key, value in (export.filters or {}).items() if key in FILTER_PARAMETERS
    }
    if export.export_type != EVERYTHING:
        return ExportFilters.from_dict(stored)
    usable = {key: value for key, value in stored.items() if key in export_type.filter_names}
    return ExportFilters.from_dict(usable)


def export_types_of(export: Export) -> list[ExportType]:
    if export.export_type == EVERYTHING:
        return registry.export_types()
    return [registry.get(export.export_type)]


def type_label(name: str) -> str:
    if name == EVERYTHING:
        return EVERYTHING_LABEL
    try:
        return registry.get(name).label
    except NotFoundError:
        return name


def type_noun(name: str) -> str:
    """How a sentence names the export: "the orders export", "the full export"."""
    return "full" if name == EVERYTHING else type_label(name).lower()


def check_export_rate(restaurant_id: int) -> None:
    """Count one export for the restaurant; past ``EXPORT_RATE_PER_RESTAURANT``, 429.

    Counted in the shared cache (Redis in production), so every process shares the budget.
    """
    limit(
        None,
        group=RATE_GROUP,
        key=lambda _group, _request: str(restaurant_id),
        rate=settings.EXPORT_RATE_PER_RESTAURANT,
        # With the counter down an Owner's or Admin's export still starts (it is audited).
        on_outage=OnOutage.ALLOW,
    )


@transaction.atomic
def export_request(
    *,
    actor: Actor,
    export_type: Any,
    filters: Any = None,
    bom: Any = False,
    dashboard_url: str = "",
) -> Export:
    """Start a background export of the actor's restaurant; the email links ``dashboard_url``."""
    from exports.tasks import run_export

    actor.require(Scope.EXPORTS_CREATE)
    name, parsed = parse_export(export_type, filters)
    require_export(actor, name)
    if not isinstance(bom, bool):
        raise InvalidInput("Use true or false.", attr="bom")
    check_export_rate(actor.restaurant.pk)
    member = actor.member
    export = Export.objects.create(
        export_type=name,
        filters=parsed.as_dict(),
        bom=bom,
        requested_by=member,
        requested_by_label=member.label[:254],
        requested_by_email=member.email,
        dashboard_url=dashboard_url[:300],
        expires_at=timezone.now() + retention(),
    )
    record_export(actor=actor, export_type=name, filters=parsed, bom=bom, target=export)
    restaurant_id, export_id = actor.restaurant.pk, export.pk
    transaction.on_commit(
        lambda: run_export.enqueue(restaurant_id=restaurant_id, export_id=export_id)
    )
    return export


def _file_path(route: str, export: Export, token: str) -> str:
    return f"{reverse(route, args=[export.pk])}?{urlencode({'token': token})}"


def export_download_url(*, actor: Actor, export: Export, route: str) -> str:
    """A link to the finished file that works for ``EXPORT_LINK_SECONDS``.

    From a bucket, a presigned URL; from disk, ``route`` (the API's or the dashboard's file
    view, which checks the signed-in member as well) with a signed token.
    """
    require_export(actor, export.export_type)
    if is_expired(export):
        raise ExportExpired("This export has expired; start a new one.")
    if export.status != Export.Status.DONE or not export.file_key:
        raise ConflictError("This export is not ready yet.", code="export_not_ready")
    if storage.serves_itself():
        token = storage.download_token(
            restaurant_id=export.restaurant_id, export_id=export.pk, key=export.file_key
        )
        return _file_path(route, export, token)
    return storage.bucket_url(
        export.file_key, file_name=export.file_name, content_type=content_type(export)
    )


def content_type(export: Export) -> str:
    return "application/zip" if export.file_name.endswith(".zip") else "text/csv; charset=utf-8"


def _expire_one(restaurant: Restaurant, export_id: int, now: Any) -> bool:
    """Delete one expired export's file, then its record; False if it is not expired (now)."""
    with tenant_context(restaurant):
        # FOR UPDATE: the row is deleted (no row points at an export).
        export = Export.objects.select_for_update().filter(pk=export_id).first()
        if export is None or export.expires_at >= now:
            return False
        if (
            export.status == Export.Status.RUNNING
            and export.heartbeat_at
            and (export.heartbeat_at > now - timedelta(hours=1))
        ):
            # Still being written: its run will leave a file; the next pass takes both.
            return False
        if export.file_key:
            storage.delete(restaurant.pk, export.file_key)
        export.delete()
    return True


def exports_expire(*, now: Any = None) -> int:
    """Delete every export (file, then record) past its ``expires_at``; returns how many.

    A periodic job: crosses restaurants to find them (the one bypass), then works in each
    restaurant's context. Safe to run twice at once (each record is locked, and a file already
    deleted is not an error) and to resume after a crash (a record goes only after its file).
    """
    now = now or timezone.now()
    expired = 0
    while True:
        with tenant_bypass():
            due = list(
                Export.unscoped.filter(expires_at__lt=now)
                .order_by("expires_at", "pk")
                .values_list("restaurant_id", "pk")[:EXPIRE_BATCH]
            )
        if not due:
            return expired
        restaurants = Restaurant.objects.in_bulk({restaurant_id for restaurant_id, _ in due})
        progressed = False
        for restaurant_id, export_id in due:
            try:
                removed = _expire_one(restaurants[restaurant_id], export_id, now)
            except Exception:
                logger.exception("Could not expire an export", extra={"export_id": export_id})
                removed = False
            expired += removed
            progressed = progressed or removed
        if not progressed:
            # Everything left is in use or failing: the next run tries again.
            return expired
