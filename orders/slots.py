"""Checkout slots: when an order can be promised (as soon as possible or a chosen time, inside
opening hours, after the preparation time) and the capacity of each slot.

:func:`checkout_options` feeds the checkout form; :func:`resolve_time` and :func:`claim_slot`
are the checks :func:`orders.placement.place_order` makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone

from nordkestrel import locks
from nordkestrel.errors import ConflictError, InvalidInput
from orders import payment_methods
from orders.models import Fulfilment, Order, Status
from tenants.hours import Schedule, pickup_times, slot_start
from tenants.models import Restaurant


class SlotFull(ConflictError):
    code = "slot_full"

    def __init__(self, detail: str, *, times: list[datetime]) -> None:
        super().__init__(detail, attr="scheduled_for")
        self.times = times

    def body(self) -> dict[str, Any]:
        return {**super().body(), "available_times": [t.isoformat() for t in self.times[:8]]}


@dataclass
class Options:
    """What the checkout form offers right now."""

    open_now: bool
    next_opening: datetime | None
    asap: datetime | None  # the promised time of an ASAP order, when one can be taken
    times: list[datetime]  # schedulable slots that still have room
    fulfilments: list[str]
    payment_methods: list[tuple[str, str]]


def _lead(restaurant: Restaurant) -> timedelta:
    return timedelta(minutes=restaurant.prep_time_minutes)


def _slot_counts(start: datetime, end: datetime) -> dict[datetime, int]:
    rows = (
        Order.objects.filter(slot_start__gte=start, slot_start__lte=end)
        .exclude(status=Status.CANCELLED)
        .values("slot_start")
        .annotate(n=Count("id"))
    )
    return {row["slot_start"]: row["n"] for row in rows}


def checkout_options(restaurant: Restaurant, *, now: datetime | None = None) -> Options:
    now = now or timezone.now()
    schedule = Schedule.load(restaurant, now=now)
    times = pickup_times(schedule, now, _lead(restaurant))
    asap = _asap_time(schedule, now, _lead(restaurant))
    capacity = restaurant.orders_per_slot
    if capacity is not None and (times or asap):
        first = min([*times, *([asap] if asap else [])])
        counts = _slot_counts(slot_start(first, schedule.zone), times[-1] if times else first)
        times = [t for t in times if counts.get(t, 0) < capacity]
        if asap and counts.get(slot_start(asap, schedule.zone), 0) >= capacity:
            asap = None
    fulfilments = [
        str(value)
        for value, enabled in (
            (Fulfilment.PICKUP, restaurant.pickup_enabled),
            (Fulfilment.DELIVERY, restaurant.delivery_enabled),
        )
        if enabled
    ]
    return Options(
        open_now=schedule.open_period_at(now) is not None,
        next_opening=schedule.next_opening(now),
        asap=asap,
        times=times,
        fulfilments=fulfilments,
        payment_methods=[(f.method, f.label) for f in payment_methods.offered(restaurant)],
    )


def _asap_time(schedule: Schedule, now: datetime, lead: timedelta) -> datetime | None:
    period = schedule.open_period_at(now)
    if period is None or now + lead > period[1]:
        return None
    return (now + lead).astimezone(schedule.zone)


def resolve_time(
    restaurant: Restaurant, schedule: Schedule, requested: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """(promised time, slot) for the request, or a 4xx saying what can be chosen instead."""
    lead = _lead(restaurant)
    if requested is None:
        promised = _asap_time(schedule, now, lead)
        if promised is None:
            opening = schedule.next_opening(now)
            when = f" It opens {opening:%a %H:%M}." if opening else ""
            raise InvalidInput(
                f"{restaurant.name} is closed now; choose a later time.{when}",
                code="closed",
                attr="scheduled_for",
            )
        return promised, slot_start(promised, schedule.zone)
    allowed = pickup_times(schedule, now, lead)
    if requested not in allowed:
        raise InvalidInput(
            "Choose one of the offered times (inside opening hours, after the preparation time).",
            code="unavailable_time",
            attr="scheduled_for",
        )
    local = requested.astimezone(schedule.zone)
    return local, slot_start(local, schedule.zone)


def claim_slot(restaurant: Restaurant, schedule: Schedule, slot: datetime, now: datetime) -> None:
    """With a capacity set, one more order in ``slot`` or a 409 naming slots with room."""
    capacity = restaurant.orders_per_slot
    if capacity is None:
        return
    # Checkouts for one slot of one restaurant queue up.
    locks.lock_for_transaction(locks.ORDER_SLOT, hash((restaurant.pk, int(slot.timestamp()))))
    taken = Order.objects.filter(slot_start=slot).exclude(status=Status.CANCELLED).count()
    if taken >= capacity:
        times = pickup_times(schedule, now, _lead(restaurant))
        counts = _slot_counts(times[0], times[-1]) if times else {}
        raise SlotFull(
            f"{slot:%H:%M} is fully booked; please choose another time.",
            times=[t for t in times if counts.get(t, 0) < capacity],
        )
