"""Changes to a restaurant's own settings and opening hours."""

from __future__ import annotations

from datetime import time
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from audit import registry
from audit import services as audit
from nordkestrel.errors import InvalidInput, error_item
from staff.auth import Actor
from staff.roles import Scope
from tenants.models import OpeningException, OpeningHours, Restaurant

# Who may turn the MFA requirement off decides what MFA protects: only an Owner, with a
# recently verified second factor (it is a sensitive scope).
SECURITY_SETTINGS = ("require_mfa_for_sensitive_actions",)

# What an operator may change through the API or the dashboard; nothing else is writable.
EDITABLE_SETTINGS = (
    "name",
    "timezone",
    "currency",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "country",
    "phone",
    "tax_rate",
    "require_mfa_for_sensitive_actions",
    "pickup_enabled",
    "delivery_enabled",
    "delivery_minimum",
    "delivery_fee",
    "prep_time_minutes",
    "orders_per_slot",
)


def _invalid(error: ValidationError) -> InvalidInput:
    """The model's validation errors as one 400 listing each of them, the first first."""
    fields = error.error_dict.items() if hasattr(error, "error_dict") else [(None, [error])]
    problems = [
        error_item(InvalidInput.code, message, None if field == NON_FIELD_ERRORS else field)
        for field, errors in fields
        for each in errors
        for message in each.messages
    ]
    first = problems[0]
    return InvalidInput(str(first["detail"]), attr=first["attr"], errors=problems)


@transaction.atomic
def restaurant_update_settings(*, actor: Actor, changes: dict[str, Any]) -> Restaurant:
    actor.require(Scope.RESTAURANT_WRITE)
    unknown = set(changes) - set(EDITABLE_SETTINGS)
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidInput(f"'{field}' cannot be changed here.", attr=field, code="read_only")
    restaurant = Restaurant.objects.locked(actor.restaurant.pk)
    changed = [field for field, value in changes.items() if getattr(restaurant, field) != value]
    if any(field in SECURITY_SETTINGS for field in changed):
        actor.require(Scope.RESTAURANT_SECURITY)
    before = {field: getattr(restaurant, field) for field in changed}
    for field in changed:
        setattr(restaurant, field, changes[field])
    try:
        restaurant.full_clean(exclude=["slug", "clerk_organization_id"])
    except ValidationError as error:
        raise _invalid(error) from None
    if changed:
        restaurant.save(update_fields=[*changed, "updated_at"])
        audit.record(
            registry.RESTAURANT_SETTINGS_CHANGED,
            actor=actor,
            target=restaurant,
            changes=audit.diff(before, {field: getattr(restaurant, field) for field in changed}),
        )
    return restaurant


def _validate_period(opens: time | None, closes: time | None, attr: str) -> None:
    if opens is None or closes is None:
        raise InvalidInput("Give both an opening and a closing time.", attr=attr)
    if opens == closes:
        raise InvalidInput("Opening and closing times must differ.", attr=attr)


@transaction.atomic
def opening_hours_replace(
    *, actor: Actor, weekly: list[dict[str, Any]], exceptions: list[dict[str, Any]]
) -> None:
    """Replace the weekly schedule and the exceptions in one step."""
    actor.require(Scope.RESTAURANT_WRITE)
    # Concurrent replacements queue on the restaurant row instead of colliding.
    Restaurant.objects.locked(actor.restaurant.pk)
    seen: set[tuple[int, time]] = set()
    for index, period in enumerate(weekly):
        _validate_period(period.get("opens"), period.get("closes"), f"weekly.{index}")
        key = (period["weekday"], period["opens"])
        if key in seen:
            raise InvalidInput("Two periods start at the same time.", attr=f"weekly.{index}")
        seen.add(key)
    dates = set()
    for index, exception in enumerate(exceptions):
        if not exception.get("closed", True):
            _validate_period(exception.get("opens"), exception.get("closes"), f"exceptions.{index}")
        if exception["date"] in dates:
            raise InvalidInput("The same date appears twice.", attr=f"exceptions.{index}")
        dates.add(exception["date"])
    before = _schedule_snapshot()
    OpeningHours.objects.all().delete()
    OpeningException.objects.all().delete()
    OpeningHours.objects.bulk_create(OpeningHours(**period) for period in weekly)
    OpeningException.objects.bulk_create(OpeningException(**exc) for exc in exceptions)
    after = _schedule_snapshot()
    if before != after:
        audit.record(
            registry.RESTAURANT_HOURS_CHANGED,
            actor=actor,
            target=actor.restaurant,
            changes=audit.diff(before, after),
        )


def _schedule_snapshot() -> dict[str, list[dict[str, Any]]]:
    return {
        "weekly": list(
            OpeningHours.objects.order_by("weekday", "opens").values("weekday", "opens", "closes")
        ),
        "exceptions": list(
            OpeningException.objects.order_by("date").values(
                "date", "closed", "opens", "closes", "note"
            )
        ),
    }
