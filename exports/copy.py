"""Streaming an export as CSV with PostgreSQL's ``COPY (SELECT ...) TO STDOUT``.

The query of an :class:`~exports.registry.ExportType` formats every cell in SQL, so Python
only moves bytes: COPY hands over one row per read, and :func:`stream_csv` regroups them into
chunks of about 64 KiB (one HTTP chunk per row would be several times slower). Memory stays
constant whatever the number of rows.

The COPY may run for ``EXPORT_STATEMENT_TIMEOUT`` seconds (a web process's statements are
otherwise cut after a few seconds), and each wait for its next row is bounded to match.

Both tenant walls apply to the COPY: it runs inside ``tenant_context`` (row-level security
through ``app.restaurant_id``) and its query filters ``restaurant_id`` explicitly (one table,
the public storefront menu, is readable by everyone under RLS; the filter is what keeps it
to this restaurant there).

Public API:

- ``stream_csv(*, restaurant, export_type, filters, bom=False, chunk_size=CHUNK_SIZE,
  progress=None) -> Iterator[bytes]``: a generator of CSV bytes (UTF-8, header row first).
  It enters ``tenant_context(restaurant)`` itself and keeps its transaction open while it
  is iterated, so it can be returned from a view whose own transaction has ended, or run in
  a task; close it (or exhaust it) to end the transaction. ``progress(rows)``, if given, is
  called after each chunk and once at the end with the number of data rows so far (it runs
  inside the export's transaction: writes it makes there commit only when the export ends).
- ``count_rows(*, restaurant, export_type, filters) -> int``: how many rows the export has.
- ``file_name(restaurant, export_type, *, on=None) -> str``:
  ``<slug>-<type>-<YYYY-MM-DD>.csv``, the date in the restaurant's time zone.
- ``record_export(*, actor, export_type, filters, bom=False, target=None) -> None``: check
  ``exports:create`` and write the ``export.created`` audit event in the caller's
  transaction.
- ``CONTENT_TYPE``, ``BOM``, ``CHUNK_SIZE``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit import registry as audit_actions
from audit import services as audit
from exports.registry import ExportFilters, ExportType, reads_of
from nordkestrel.postgresql.base import statement_timeout
from staff.auth import Actor
from staff.roles import Scope
from tenants.context import tenant_context
from tenants.models import Restaurant

CONTENT_TYPE = "text/csv; charset=utf-8"
# Excel reads a CSV as UTF-8 only when it starts with the byte order mark.
BOM = b"\xef\xbb\xbf"
CHUNK_SIZE = 64 * 1024
COPY_OPTIONS = "FORMAT csv, HEADER true, ENCODING 'UTF8'"


def copy_statement(
    restaurant: Restaurant, export_type: ExportType, filters: ExportFilters
) -> tuple[str, dict[str, Any]]:
    query, params = export_type.query(
        filters, restaurant_id=restaurant.pk, currency=restaurant.currency, zone=restaurant.zone
    )
    return f"COPY ({query}) TO STDOUT WITH ({COPY_OPTIONS})", params


def stream_csv(
    *,
    restaurant: Restaurant,
    export_type: ExportType,
    filters: ExportFilters,
    bom: bool = False,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The export as CSV bytes, in chunks of at least ``chunk_size`` (the last may be less)."""
    statement, params = copy_statement(restaurant, export_type, filters)
    with (
        tenant_context(restaurant),
        # A large export may take minutes, longer than a web request's statements may.
        statement_timeout(settings.EXPORT_STATEMENT_TIMEOUT),
        connection.cursor() as cursor,
    ):
        # Times are written in the restaurant's zone: to_char's offset follows the session's
        # TimeZone, set for this transaction only (a rolled-back savepoint undoes it too).
        cursor.execute(
            "SELECT current_setting('TimeZone'), set_config('TimeZone', %s, true)",
            [restaurant.timezone],
        )
        previous_zone = cursor.fetchone()[0]
        buffer = bytearray(BOM if bom else b"")
        rows = -1  # the first row COPY sends is the header
        with cursor.cursor.copy(statement, params) as copy:
            for data in copy:
                buffer += data
                rows += 1
                if len(buffer) >= chunk_size:
                    yield bytes(buffer)
                    buffer.clear()
                    if progress is not None:
                        progress(rows)
        if buffer:
            yield bytes(buffer)
        if progress is not None:
            progress(max(rows, 0))
        # Inside an outer transaction (a task's), later queries see the zone they had.
        cursor.execute("SELECT set_config('TimeZone', %s, true)", [previous_zone])


def count_rows(*, restaurant: Restaurant, export_type: ExportType, filters: ExportFilters) -> int:
    query, params = export_type.query(
        filters, restaurant_id=restaurant.pk, currency=restaurant.currency, zone=restaurant.zone
    )
    with (
        tenant_context(restaurant),
        statement_timeout(settings.EXPORT_STATEMENT_TIMEOUT),
        connection.cursor() as cursor,
    ):
        # The export type's own query; every value in it is a parameter.
        cursor.cursor.execute(f"SELECT count(*) FROM ({query}) AS export", params)  # noqa: S608
        return int(cursor.cursor.fetchone()[0])


def file_name(restaurant: Restaurant, export_type: ExportType, *, on: date | None = None) -> str:
    day = on or timezone.localtime(timezone.now(), restaurant.zone).date()
    return f"{restaurant.slug}-{export_type.name.replace('_', '-')}-{day.isoformat()}.csv"


def require_export(actor: Actor, name: str) -> None:
    """``exports:create`` and what the rows would show (an API key may hold the one and not
    the others; a role that holds the one holds them all)."""
    actor.require(Scope.EXPORTS_CREATE)
    for scope in sorted(reads_of(name)):
        actor.require(scope)


def record_export(
    *,
    actor: Actor,
    export_type: ExportType | str,
    filters: ExportFilters,
    bom: bool = False,
    target: Any = None,
) -> None:
    """Check the actor may export and audit it (``export.created``) in this transaction."""
    name = export_type if isinstance(export_type, str) else export_type.name
    require_export(actor, name)
    changes: dict[str, Any] = {"export_type": {"before": None, "after": name}}
    if filters.as_dict():
        changes["filters"] = {"before": None, "after": filters.as_dict()}
    if bom:
        changes["bom"] = {"before": None, "after": True}
    if target is not None:
        audit.record(audit_actions.EXPORT_CREATED, actor=actor, target=target, changes=changes)
    else:
        audit.record(
            audit_actions.EXPORT_CREATED,
            actor=actor,
            target_type="export",
            target_id=name,
            target_label=f"{name} export",
            changes=changes,
        )
