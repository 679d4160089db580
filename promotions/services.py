"""Promotion codes: managing them, and redeeming one atomically at checkout.

Promotions are never deleted: orders and redemptions point at them. A code that should no
longer be used is deactivated (``active=False``) instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit import registry
from audit import services as audit
from customers.models import Customer
from nordkestrel.errors import ConflictError, InvalidInput, NotFoundError
from nordkestrel.text import storable
from promotions.models import Promotion, Redemption
from promotions.rules import refuse
from staff.auth import Actor
from staff.roles import Scope
from tenants.context import current_restaurant


def promotion_count_use(*, promotion: Promotion, customer: Customer, has_orders: bool) -> None:
    """Count one use of ``promotion`` by ``customer``, inside the checkout's transaction.

    The total cap is one conditional UPDATE (``redemption_count < max_redemptions``): under
    any concurrency a cap of N admits exactly N. The per-customer rules read the customer's
    history under the customer's row lock, which checkout already holds: ``has_orders``,
    whether the customer has an order that was not cancelled, read by checkout under that
    lock (it matters only to a code for a first order only).
    """
    if promotion.first_order_only and has_orders:
        raise refuse("That code is for a first order only.", "promotion_first_order_only")
    if promotion.per_customer_limit is not None:
        used = Redemption.objects.filter(
            promotion=promotion, customer_id=customer.pk, counted=True
        ).count()
        if used >= promotion.per_customer_limit:
            raise refuse(
                "You have already used that code as often as it allows.",
                "promotion_customer_limit",
            )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Promotion._meta.db_table} SET redemption_count = redemption_count + 1
             WHERE restaurant_id = %s AND id = %s AND active
               AND (max_redemptions IS NULL OR redemption_count < max_redemptions)
            """,  # noqa: S608 - the table name is the model's, every value a parameter
            [current_restaurant().pk, promotion.pk],
        )
        if cursor.rowcount != 1:
            raise refuse("That promotion code has been used up.", "promotion_used_up")


def promotion_release(*, order_id: int) -> None:
    """A cancelled order gives its use of a code back (to the total and per-customer caps)."""
    redemption = (
        Redemption.objects.select_for_update(no_key=True)
        .filter(order_id=order_id, counted=True)
        .first()
    )
    if redemption is None:
        return
    redemption.counted = False
    redemption.save(update_fields=["counted"])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Promotion._meta.db_table} SET redemption_count = redemption_count - 1"  # noqa: S608
            " WHERE restaurant_id = %s AND id = %s AND redemption_count > 0",
            [current_restaurant().pk, redemption.promotion_id],
        )


def promotion_restore(*, order_id: int) -> None:
    """An order that counts again (its refund failed) takes back the use it gave back, even
    past a cap reached meanwhile: the order was made with the code."""
    redemption = (
        Redemption.objects.select_for_update(no_key=True)
        .filter(order_id=order_id, counted=False)
        .first()
    )
    if redemption is None:
        return
    redemption.counted = True
    redemption.save(update_fields=["counted"])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Promotion._meta.db_table} SET redemption_count = redemption_count + 1"  # noqa: S608
            " WHERE restaurant_id = %s AND id = %s",
            [current_restaurant().pk, redemption.promotion_id],
        )


# --- Managing codes --------------------------------------------------------------------------

CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{3,32}")
EDITABLE = (
    "code", "description", "kind", "value", "min_subtotal", "starts_at", "ends_at",
    "max_redemptions", "per_customer_limit", "first_order_only", "active",
)  # fmt: skip
REQUIRED = ("code", "kind", "value")
DEFAULTS: dict[str, Any] = {
    "description": "",
    "min_subtotal": 0,
    "starts_at": None,
    "ends_at": None,
    "max_redemptions": None,
    "per_customer_limit": None,
    "first_order_only": False,
    "active": True,
}
MAX_DESCRIPTION = 200
# Minor units: the same ceiling as a menu price.
MAX_AMOUNT = 10_000_000
MAX_COUNT = 1_000_000
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class PromotionStatus:
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    EXPIRED = "expired"
    USED_UP = "used_up"
    INACTIVE = "inactive"


def promotion_status(promotion: Promotion, now: datetime | None = None) -> str:
    """Where a code stands now, as checkout would judge it. A deactivated code is inactive
    whatever its dates; an ended one is expired even if it was also used up."""
    now = now or timezone.now()
    if not promotion.active:
        return PromotionStatus.INACTIVE
    if promotion.ends_at is not None and now >= promotion.ends_at:
        return PromotionStatus.EXPIRED
    if (
        promotion.max_redemptions is not None
        and promotion.redemption_count >= promotion.max_redemptions
    ):
        return PromotionStatus.USED_UP
    if promotion.starts_at is not None and now < promotion.starts_at:
        return PromotionStatus.SCHEDULED
    return PromotionStatus.ACTIVE


def _whole(values: Mapping[str, Any], attr: str, low: int, high: int, message: str) -> None:
    value = values[attr]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(message, attr=attr)


def _optional_whole(values: Mapping[str, Any], attr: str, message: str) -> None:
    if values[attr] is not None:
        _whole(values, attr, 1, MAX_COUNT, message)


def _text(value: Any, attr: str) -> str:
    if not isinstance(value, str) or not storable(value):
        raise InvalidInput("Use ordinary text.", attr=attr)
    return value.strip()


def _clean(values: dict[str, Any], *, redemption_count: int) -> dict[str, Any]:
    """A promotion's complete set of fields, checked together; the cleaned values."""
    values["code"] = _text(values["code"], "code")
    if not CODE_PATTERN.fullmatch(values["code"]):
        raise InvalidInput(
            "A code is 3-32 characters: letters, digits, '-' and '_'.",
            code="invalid_code",
            attr="code",
        )
    values["description"] = _text(values["description"], "description")
    if len(values["description"]) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"Keep the description to {MAX_DESCRIPTION} characters.", attr="description"
        )
    if values["kind"] not in Promotion.Kind.values:
        raise InvalidInput("Choose percent or fixed.", attr="kind")
    if values["kind"] == Promotion.Kind.PERCENT:
        _whole(values, "value", 1, 100, "A percent discount is a whole number from 1 to 100.")
    else:
        _whole(values, "value", 1, MAX_AMOUNT, "A fixed discount takes off more than zero.")
    _whole(values, "min_subtotal", 0, MAX_AMOUNT, "The minimum order is zero or more.")
    for attr in ("starts_at", "ends_at"):
        moment = values[attr]
        if moment is None:
            continue
        if not isinstance(moment, datetime) or timezone.is_naive(moment):
            raise InvalidInput("Give a time with its time zone.", attr=attr)
        if not EARLIEST <= moment < LATEST:
            raise InvalidInput("Choose a time between the years 2000 and 9000.", attr=attr)
        # Whole seconds: what a person can type, so a time shown in a form saves unchanged.
        values[attr] = moment.replace(microsecond=0)
    if values["starts_at"] and values["ends_at"] and values["starts_at"] >= values["ends_at"]:
        raise InvalidInput("The end must be after the start.", attr="ends_at")
    _optional_whole(values, "max_redemptions", "The total limit is 1 or more, or none.")
    if values["max_redemptions"] is not None and values["max_redemptions"] < redemption_count:
        raise InvalidInput(
            f"This code has already been used {redemption_count} times; "
            f"the total limit cannot be lower.",
            code="below_redemptions",
            attr="max_redemptions",
        )
    _optional_whole(values, "per_customer_limit", "The limit per customer is 1 or more, or none.")
    for attr in ("first_order_only", "active"):
        if not isinstance(values[attr], bool):
            raise InvalidInput("Use true or false.", attr=attr)
    return values


def _require_known(fields: Mapping[str, Any]) -> None:
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise InvalidInput("This field cannot be set.", code="read_only", attr=unknown[0])


def _code_taken() -> ConflictError:
    return ConflictError(
        "Another promotion already uses this code (codes ignore upper and lower case).",
        code="code_taken",
        attr="code",
    )


def _refuse_taken_code(code: str, *, exclude: int | None = None) -> None:
    others = Promotion.objects.filter(code__iexact=code)
    if exclude is not None:
        others = others.exclude(pk=exclude)
    if others.exists():
        raise _code_taken()


def _save(promotion: Promotion, update_fields: list[str] | None = None) -> None:
    """Save; the unique index decides a race between two requests for the same code."""
    try:
        with transaction.atomic():
            promotion.save(update_fields=update_fields)
    except IntegrityError as error:
        if "promotions_code_unique" in str(error):
            raise _code_taken() from None
        raise


def _audit_value(value: Any) -> Any:
    # One spelling per instant, whatever zone the time was given in.
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def _snapshot(promotion: Promotion) -> dict[str, Any]:
    return {field: _audit_value(getattr(promotion, field)) for field in EDITABLE}


@transaction.atomic
def promotion_create(*, actor: Actor, **fields: Any) -> Promotion:
    """A new code. ``code``, ``kind`` and ``value`` are required; see EDITABLE and DEFAULTS."""
    actor.require(Scope.PROMOTIONS_WRITE)
    _require_known(fields)
    for attr in REQUIRED:
        if attr not in fields:
            raise InvalidInput("This field is required.", code="required", attr=attr)
    values = _clean({**DEFAULTS, **fields}, redemption_count=0)
    _refuse_taken_code(values["code"])
    promotion = Promotion(**values)
    _save(promotion)
    audit.record(
        registry.PROMOTION_CREATED,
        actor=actor,
        target=promotion,
        changes=audit.diff({}, _snapshot(promotion)),
    )
    return promotion


@transaction.atomic
def promotion_update(*, actor: Actor, promotion: Promotion, **fields: Any) -> Promotion:
    """Change some of a code's fields. Its row is locked, so the checks see the redemption
    count as it is now; once the code has been redeemed, the code itself stays as it is."""
    actor.require(Scope.PROMOTIONS_WRITE)
    _require_known(fields)
    current = Promotion.objects.select_for_update(no_key=True).filter(pk=promotion.pk).first()
    if current is None:
        raise NotFoundError("Not found.")
    before = _snapshot(current)
    values = _clean(
        {**{field: getattr(current, field) for field in EDITABLE}, **fields},
        redemption_count=current.redemption_count,
    )
    if values["code"] != current.code:
        if Redemption.objects.filter(promotion_id=current.pk).exists():
            raise ConflictError(
                "This code has been redeemed, so it cannot be renamed. Deactivate it and "
                "create a new one instead.",
                code="code_in_use",
                attr="code",
            )
        _refuse_taken_code(values["code"], exclude=current.pk)
    for field, value in values.items():
        setattr(current, field, value)
    changes = audit.diff(before, _snapshot(current))
    if not changes:
        return current
    _save(current, update_fields=[*changes, "updated_at"])
    audit.record(registry.PROMOTION_UPDATED, actor=actor, target=current, changes=changes)
    return current
