"""The export types: what each CSV holds, as one SQL query per type, and their filters.

Every type is a :class:`ExportType`: its columns (SQL expressions that already format each
cell, see :mod:`exports.cells`), its source (``FROM`` and joins) and the column that names
the restaurant. :meth:`ExportType.query` turns validated :class:`ExportFilters` into the
``SELECT`` that :mod:`exports.copy` streams through ``COPY ... TO STDOUT``. The built-in types
(orders, order lines, customers, menus, promotions, redemptions) are in
:mod:`exports.definitions`; other apps add theirs with :func:`register` when they load.

Public API:

- ``export_types() -> list[ExportType]``: every registered type, in registration order.
- ``get(name: str) -> ExportType``: one type; :class:`UnknownExport` (a 404) if none.
- ``parse_filters(export_type, params: Mapping[str, Any]) -> ExportFilters``: query
  parameters (``date_from``, ``date_to``: restaurant-local dates, inclusive; ``status``:
  repeatable or comma-separated, for types with a status) → filters, or a 400
  (:class:`nordkestrel.errors.InvalidInput` naming the parameter).
- ``ExportFilters.as_dict()`` / ``ExportFilters.from_dict(data)``: JSON-safe round trip, for
  audit events and stored export records.
- ``register(export_type) -> ExportType``: add a type (a duplicate name fails).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from nordkestrel.errors import InvalidInput, NotFoundError
from staff.roles import Scope

# Dates outside this window are typos, not filters (and would overflow a datetime).
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(9000, 1, 1)
MAX_STATUS_VALUES = 20
FILTER_PARAMETERS = ("date_from", "date_to", "status")


class UnknownExport(NotFoundError):
    code = "unknown_export"


class DuplicateExport(ValueError):
    pass


@dataclass(frozen=True)
class Column:
    """One CSV column: its header and the SQL expression that gives the finished cell."""

    name: str
    sql: str
    description: str = ""


@dataclass(frozen=True)
class ExportFilters:
    date_from: date | None = None  # in the restaurant's time zone, inclusive
    date_to: date | None = None  # inclusive
    statuses: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Only the filters that are set, JSON-safe: ``{"date_from": "2026-05-01", ...}``."""
        data: dict[str, Any] = {}
        if self.date_from:
            data["date_from"] = self.date_from.isoformat()
        if self.date_to:
            data["date_to"] = self.date_to.isoformat()
        if self.statuses:
            data["status"] = list(self.statuses)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportFilters:
        """The inverse of :meth:`as_dict` (for values it wrote; not for user input)."""
        return cls(
            date_from=date.fromisoformat(data["date_from"]) if data.get("date_from") else None,
            date_to=date.fromisoformat(data["date_to"]) if data.get("date_to") else None,
            statuses=tuple(data.get("status") or ()),
        )


@dataclass(frozen=True)
class ExportType:
    """A CSV export of one kind of row.

    ``source`` is the ``FROM`` clause with its joins; each join repeats the restaurant
    condition with the ``%(restaurant_id)s`` parameter. ``tenant_column`` is the main
    table's restaurant column, always filtered. Queries may use the parameters
    ``%(restaurant_id)s`` and ``%(currency)s`` (the restaurant's currency).
    """

    name: str  # in URLs and file names: lower-case letters and underscores
    label: str
    description: str
    columns: tuple[Column, ...]
    source: str
    tenant_column: str
    order_by: str
    # Filterable columns (timestamptz for dates); None when the type has no such filter.
    date_column: str | None = None
    status_column: str | None = None
    statuses: tuple[str, ...] = field(default=())  # the values ``status`` accepts
    # What the rows would show the actor anyway (orders: ORDERS_READ, ...): a role holding
    # ``exports:create`` holds them all; an API key must be granted each as well.
    reads: tuple[Scope, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def filter_names(self) -> list[str]:
        names = ["date_from", "date_to"] if self.date_column else []
        return [*names, "status"] if self.status_column else names

    def query(
        self, filters: ExportFilters, *, restaurant_id: int, currency: str, zone: ZoneInfo
    ) -> tuple[str, dict[str, Any]]:
        """The ``SELECT`` for this restaurant and these filters, and its parameters."""
        selected = ", ".join(f'{column.sql} AS "{column.name}"' for column in self.columns)
        conditions = [f"{self.tenant_column} = %(restaurant_id)s"]
        params: dict[str, Any] = {"restaurant_id": restaurant_id, "currency": currency}
        if filters.date_from and self.date_column:
            conditions.append(f"{self.date_column} >= %(date_start)s")
            params["date_start"] = _day_start(filters.date_from, zone)
        if filters.date_to and self.date_column:
            conditions.append(f"{self.date_column} < %(date_end)s")
            params["date_end"] = _day_start(filters.date_to + timedelta(days=1), zone)
        if filters.statuses and self.status_column:
            conditions.append(f"{self.status_column} = ANY(%(statuses)s)")
            params["statuses"] = list(filters.statuses)
        sql = (
            f"SELECT {selected} {self.source} WHERE {' AND '.join(conditions)} "
            f"ORDER BY {self.order_by}"
        )
        return sql, params


_TYPES: dict[str, ExportType] = {}


def register(export_type: ExportType) -> ExportType:
    if export_type.name in _TYPES:
        raise DuplicateExport(f"Export type {export_type.name!r} is already registered.")
    if not export_type.name.replace("_", "").isalpha() or export_type.name != (
        export_type.name.lower()
    ):
        raise ValueError(f"Export names are lower-case letters and '_': {export_type.name!r}")
    if export_type.status_column and not export_type.statuses:
        raise ValueError(f"{export_type.name}: a status filter needs the accepted statuses.")
    _TYPES[export_type.name] = export_type
    return export_type


def export_types() -> list[ExportType]:
    return list(_TYPES.values())


def reads_of(name: str) -> frozenset[Scope]:
    """The read scopes an export of ``name`` needs beside ``exports:create`` (every type's
    for the everything archive)."""
    chosen = _TYPES.values() if name not in _TYPES else [_TYPES[name]]
    return frozenset(scope for export in chosen for scope in export.reads)


def get(name: str) -> ExportType:
    try:
        return _TYPES[name]
    except KeyError:
        raise UnknownExport(
            f"No such export; use one of {', '.join(_TYPES)}.", attr="export_type"
        ) from None


def _values(params: Mapping[str, Any], key: str) -> list[str]:
    """A repeatable, comma-separated parameter's values (QueryDict or a plain dict)."""
    getlist = getattr(params, "getlist", None)
    raw = getlist(key) if getlist else [params[key]] if key in params else []
    return [part.strip() for value in raw for part in str(value).split(",") if part.strip()]


def _day(params: Mapping[str, Any], key: str) -> date | None:
    values = _values(params, key)
    if len(values) > 1:
        raise InvalidInput("Give this filter once.", attr=key)
    if not values:
        return None
    try:
        day = date.fromisoformat(values[0])
    except ValueError:
        raise InvalidInput("Use a date like 2026-05-01.", attr=key) from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise InvalidInput("Choose a date between 2000 and 9000.", attr=key)
    return day


def _statuses(export_type: ExportType, values: Iterable[str]) -> tuple[str, ...]:
    statuses: list[str] = []
    for value in values:
        if value not in export_type.statuses:
            raise InvalidInput(
                f"Unknown status; use one of {', '.join(export_type.statuses)}.", attr="status"
            )
        if value not in statuses:
            statuses.append(value)
    return tuple(statuses)


def parse_filters(export_type: ExportType, params: Mapping[str, Any]) -> ExportFilters:
    """Filter parameters → :class:`ExportFilters`; a 400 naming the parameter for anything
    not understood, including a filter this type does not have. Other keys are ignored
    here (the caller decides what else it accepts)."""
    for name in FILTER_PARAMETERS:
        if name not in export_type.filter_names and _values(params, name):
            raise InvalidInput(f"The {export_type.name} export has no {name} filter.", attr=name)
    raw_statuses = _values(params, "status")
    if len(raw_statuses) > MAX_STATUS_VALUES:
        raise InvalidInput("Too many statuses.", attr="status")
    filters = ExportFilters(
        date_from=_day(params, "date_from"),
        date_to=_day(params, "date_to"),
        statuses=_statuses(export_type, raw_statuses),
    )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise InvalidInput("Must not be before date_from.", attr="date_to")
    return filters


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)
