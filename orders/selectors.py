"""Reads of orders for staff: the filtered list, the kitchen's queue and one order's page.

Each read prefetches what it shows (lines, history), so its query count does not grow with
the number of orders or lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import models
from django.utils import timezone

from nordkestrel.errors import InvalidInput
from orders.models import ACTIVE_STATUSES, Fulfilment, Order, Status
from orders.services import NEXT_STEP, TRANSITIONS

# Dates outside this window are typos, not filters (and would overflow a datetime).
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(9000, 1, 1)
MAX_STATUS_VALUES = 20
# The latest orders shown with a customer.
RECENT_ORDERS = 20
# Not yet ready: an order whose promised time has passed is late.
UNREADY_STATUSES = (Status.PLACED, Status.ACCEPTED, Status.PREPARING)
NEWEST_FIRST = "-created_at"
OLDEST_FIRST = "created_at"


@dataclass(frozen=True)
class OrderFilters:
    statuses: tuple[str, ...] = ()
    active: bool = False
    date_from: date | None = None  # in the restaurant's time zone, inclusive
    date_to: date | None = None  # inclusive
    fulfilment: str | None = None


def _values(params: Mapping[str, Any], key: str) -> list[str]:
    """A repeatable, comma-separated parameter's values (QueryDict or a plain dict)."""
    getlist = getattr(params, "getlist", None)
    raw = getlist(key) if getlist else [params[key]] if key in params else []
    return [part.strip() for value in raw for part in str(value).split(",") if part.strip()]


def _one(params: Mapping[str, Any], key: str) -> str:
    values = _values(params, key)
    if len(values) > 1:
        raise InvalidInput("Give this filter once.", attr=key)
    return values[0] if values else ""


def _day(params: Mapping[str, Any], key: str) -> date | None:
    text = _one(params, key)
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidInput("Use a date like 2026-05-01.", attr=key) from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise InvalidInput("Choose a date between 2000 and 9000.", attr=key)
    return day


def parse_statuses(values: Iterable[str]) -> tuple[str, ...]:
    statuses: list[str] = []
    for value in values:
        if value not in Status.values:
            raise InvalidInput(
                f"Unknown status; use one of {', '.join(Status.values)}.", attr="status"
            )
        if value not in statuses:
            statuses.append(value)
    if len(statuses) > MAX_STATUS_VALUES:
        raise InvalidInput("Too many statuses.", attr="status")
    return tuple(statuses)


def parse_filters(params: Mapping[str, Any]) -> OrderFilters:
    """Query parameters → filters; a 400 naming the parameter for anything not understood."""
    raw_statuses = _values(params, "status")
    if len(raw_statuses) > MAX_STATUS_VALUES:
        raise InvalidInput("Too many statuses.", attr="status")
    active_text = _one(params, "active").lower()
    if active_text not in ("", "true", "false", "1", "0"):
        raise InvalidInput("Use true or false.", attr="active")
    fulfilment = _one(params, "fulfilment")
    if fulfilment and fulfilment not in Fulfilment.values:
        raise InvalidInput(f"Use one of {', '.join(Fulfilment.values)}.", attr="fulfilment")
    filters = OrderFilters(
        statuses=parse_statuses(raw_statuses),
        active=active_text in ("true", "1"),
        date_from=_day(params, "date_from"),
        date_to=_day(params, "date_to"),
        fulfilment=fulfilment or None,
    )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise InvalidInput("Must not be before date_from.", attr="date_to")
    return filters


def parse_ordering(params: Mapping[str, Any]) -> str:
    ordering = _one(params, "ordering") or OLDEST_FIRST
    if ordering not in (OLDEST_FIRST, NEWEST_FIRST):
        raise InvalidInput(
            f"Use {OLDEST_FIRST} (oldest first) or {NEWEST_FIRST} (newest first).",
            attr="ordering",
        )
    return ordering


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


def with_lines(queryset: models.QuerySet) -> models.QuerySet:
    return queryset.prefetch_related("lines")


def filter_orders(
    queryset: models.QuerySet, filters: OrderFilters, *, zone: ZoneInfo
) -> models.QuerySet:
    if filters.statuses:
        queryset = queryset.filter(status__in=filters.statuses)
    if filters.active:
        queryset = queryset.filter(status__in=ACTIVE_STATUSES)
    if filters.date_from:
        queryset = queryset.filter(created_at__gte=_day_start(filters.date_from, zone))
    if filters.date_to:
        end = _day_start(filters.date_to + timedelta(days=1), zone)
        queryset = queryset.filter(created_at__lt=end)
    if filters.fulfilment:
        queryset = queryset.filter(fulfilment=filters.fulfilment)
    return queryset


def order_list(filters: OrderFilters, *, zone: ZoneInfo) -> models.QuerySet:
    """The current restaurant's orders matching ``filters``, newest first, with their lines."""
    orders = filter_orders(Order.objects.all(), filters, zone=zone)
    return with_lines(orders).order_by("-created_at", "-id")


def kitchen_queue() -> models.QuerySet:
    """Orders someone still has to act on, oldest first, with their lines."""
    return with_lines(Order.objects.filter(status__in=ACTIVE_STATUSES)).order_by("created_at", "id")


def order_with_history(queryset: models.QuerySet) -> models.QuerySet:
    return queryset.prefetch_related("lines", "status_changes")


def is_late(order: Order, now: datetime | None = None) -> bool:
    """Past its promised time and not ready yet."""
    return order.status in UNREADY_STATUSES and order.promised_at < (now or timezone.now())


def next_step(order: Order) -> str | None:
    """The one-tap step the kitchen takes next, if any."""
    step = NEXT_STEP.get(Status(order.status))
    return str(step) if step is not None else None


def can_be_cancelled(order: Order) -> bool:
    return (order.status, Status.CANCELLED) in TRANSITIONS


def customer_recent_orders(customer_id: int, limit: int = RECENT_ORDERS) -> list[Order]:
    """A customer's latest orders, newest first, in one query."""
    return list(
        Order.objects.filter(customer_id=customer_id)
        .only("id", "number", "status", "total", "currency", "created_at")
        .order_by("-created_at", "-id")[:limit]
    )
