"""When a restaurant is open: weekly hours and dated exceptions as concrete periods in time.

Everything is computed in the restaurant's time zone and returned as aware datetimes, so a
period past midnight, a holiday exception and a daylight-saving change all come out right.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tenants.context import TenantMismatch, current_restaurant
from tenants.models import OpeningException, OpeningHours, Restaurant

SLOT_MINUTES = 15
# How far ahead diners may schedule an order.
SCHEDULE_DAYS = 7


# Schedules kept by Schedule.at_revision: restaurant id -> ((revision, zone, date), schedule).
SCHEDULES_KEPT = 10_000
_schedules: dict[int, tuple[tuple[int, str, date], Schedule]] = {}


@dataclass(frozen=True)
class Schedule:
    zone: ZoneInfo
    weekly: dict[int, list[tuple[time, time]]]
    exceptions: dict[date, tuple[time, time] | None]  # None: closed all day

    @classmethod
    def load(cls, restaurant: Restaurant, *, now: datetime | None = None) -> Schedule:
        """Two queries: the weekly hours and the exceptions that can matter from ``now``."""
        zone = restaurant.zone
        today = (now or datetime.now(zone)).astimezone(zone).date()
        weekly: dict[int, list[tuple[time, time]]] = {}
        for weekday, opens, closes in OpeningHours.objects.values_list(
            "weekday", "opens", "closes"
        ):
            weekly.setdefault(weekday, []).append((opens, closes))
        exceptions: dict[date, tuple[time, time] | None] = {}
        rows = OpeningException.objects.filter(
            date__gte=today - timedelta(days=1), date__lte=today + timedelta(days=SCHEDULE_DAYS + 1)
        ).values_list("date", "closed", "opens", "closes")
        for day, closed, opens, closes in rows:
            exceptions[day] = None if closed or opens is None or closes is None else (opens, closes)
        return cls(zone=zone, weekly=weekly, exceptions=exceptions)

    @classmethod
    def at_revision(cls, restaurant: Restaurant, revision: int, *, now: datetime) -> Schedule:
        """The schedule as :meth:`load` builds it, kept in this process per restaurant while
        its ``hours_revision`` (read by the caller in its own transaction), its time zone and
        the local date stay the same: any change to the hours or exceptions moves the
        revision, so a kept schedule is never out of date. No query when kept."""
        if current_restaurant().pk != restaurant.pk:  # load() reads the context's hours
            raise TenantMismatch("A schedule is kept for the restaurant in context only.")
        zone = restaurant.zone
        key = (revision, str(zone), now.astimezone(zone).date())
        kept = _schedules.get(restaurant.pk)
        if kept is not None and kept[0] == key:
            return kept[1]
        schedule = cls.load(restaurant, now=now)
        if len(_schedules) >= SCHEDULES_KEPT:
            _schedules.clear()
        _schedules[restaurant.pk] = (key, schedule)
        return schedule

    def _periods_starting(self, day: date) -> list[tuple[datetime, datetime]]:
        if day in self.exceptions:
            exception = self.exceptions[day]
            hours = [] if exception is None else [exception]
        else:
            hours = self.weekly.get(day.weekday(), [])
        periods = []
        for opens, closes in hours:
            start = datetime.combine(day, opens, self.zone)
            end_day = day if closes > opens else day + timedelta(days=1)
            periods.append((start, datetime.combine(end_day, closes, self.zone)))
        return sorted(periods)

    def periods(self, start: datetime, days: int) -> list[tuple[datetime, datetime]]:
        """Open periods that end after ``start``, over ``days`` days from its date."""
        local = start.astimezone(self.zone)
        found: list[tuple[datetime, datetime]] = []
        for offset in range(-1, days + 1):
            for period in self._periods_starting(local.date() + timedelta(days=offset)):
                if period[1] > start:
                    found.append(period)
        return sorted(found)

    def open_period_at(self, moment: datetime) -> tuple[datetime, datetime] | None:
        for start, end in self.periods(moment, 0):
            if start <= moment < end:
                return start, end
        return None

    def next_opening(self, moment: datetime) -> datetime | None:
        for start, _end in self.periods(moment, SCHEDULE_DAYS):
            if start > moment:
                return start.astimezone(self.zone)
        return None


def slot_start(moment: datetime, zone: ZoneInfo) -> datetime:
    """The 15-minute slot (in the restaurant's wall clock) a moment falls into."""
    local = moment.astimezone(zone)
    minute = local.minute - local.minute % SLOT_MINUTES
    return local.replace(minute=minute, second=0, microsecond=0)


def pickup_times(
    schedule: Schedule, now: datetime, lead: timedelta, *, days: int = SCHEDULE_DAYS
) -> list[datetime]:
    """Every slot a diner may choose: inside an open period, at least ``lead`` after opening
    and after now."""
    earliest = now + lead
    times: list[datetime] = []
    for start, end in schedule.periods(now, days):
        candidate = slot_start(max(start + lead, earliest), schedule.zone)
        if candidate < max(start + lead, earliest):
            candidate += timedelta(minutes=SLOT_MINUTES)
        while candidate <= end:
            if not times or candidate > times[-1]:
                times.append(candidate)
            candidate += timedelta(minutes=SLOT_MINUTES)
    return times
