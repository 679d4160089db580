"""Checkout: a diner's request, validated, priced on the server and placed exactly once.

Storefront pages and the storefront API both parse into :class:`CheckoutRequest` and call
:func:`place_order`; :func:`checkout_options` and :func:`quote` feed the checkout form.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from customers.services import customer_for_checkout
from menus.storefront import LiveMenu, live_menu
from nordkestrel import events, locks
from nordkestrel.errors import ConflictError, DomainError, InvalidInput
from nordkestrel.money import to_major
from nordkestrel.text import storable
from orders import events as order_events
from orders import payment_methods
from orders.models import (
    Fulfilment,
    Order,
    OrderLine,
    OrderSequence,
    Status,
    StatusChange,
)
from orders.pricing import MAX_LINES, CartLine, Charges, Quote, StaleCart, price_cart
from promotions import rules
from promotions.models import Promotion, Redemption
from promotions.services import promotion_count_use
from tenants.context import (
    TenantMismatch,
    current_restaurant_or_none,
    tenant_context,
)
from tenants.hours import Schedule, pickup_times, slot_start
from tenants.models import Restaurant

PHONE = re.compile(r"\+?[0-9 ()\-]{6,30}")
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,100}")
TEXT_LIMITS = {"name": 120, "phone": 32, "delivery_notes": 300, "note": 200}
ADDRESS_FIELDS = {"line1": True, "line2": False, "postal_code": True, "city": True}
# The largest amount an order's integer columns hold (a cart of the dearest items can exceed it).
MAX_ORDER_AMOUNT = 2**31 - 1


@dataclass(frozen=True)
class CheckoutRequest:
    lines: list[CartLine]
    fulfilment: str
    scheduled_for: datetime | None  # None: as soon as possible
    name: str
    email: str
    phone: str = ""
    address: dict[str, str] = field(default_factory=dict)
    delivery_notes: str = ""
    tip: int = 0
    promotion_code: str = ""
    marketing_consent: bool = False
    payment_method: str = "in_person"
    # The total the diner was shown; a different server total refuses the checkout.
    expected_total: int | None = None

    def fingerprint(self) -> str:
        data = asdict(self)
        data.pop("expected_total")
        canonical = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# --- Parsing ---------------------------------------------------------------------------------


def _text(data: Mapping[str, Any], key: str, *, required: bool = False, attr: str = "") -> str:
    value = data.get(key, "")
    attr = attr or key
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput("Use text.", attr=attr)
    value = value.strip()
    if not storable(value):
        raise InvalidInput("That text contains a character we cannot store.", attr=attr)
    limit = TEXT_LIMITS.get(key.split(".")[-1], 200)
    if len(value) > limit:
        raise InvalidInput(f"Use at most {limit} characters.", attr=attr)
    if required and not value:
        raise InvalidInput("This is required.", attr=attr)
    return value


def _whole(value: Any, attr: str, *, minimum: int = 0, maximum: int = 10_000_000) -> int:
    if isinstance(value, bool):
        raise InvalidInput("Use a whole number.", attr=attr)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        try:
            value = int(value.strip())
        except ValueError:  # "--1", "²", or more digits than int() converts
            raise InvalidInput("Use a whole number.", attr=attr) from None
    if not isinstance(value, int):
        raise InvalidInput("Use a whole number.", attr=attr)
    if not minimum <= value <= maximum:
        raise InvalidInput(f"Use a number from {minimum} to {maximum}.", attr=attr)
    return value


def parse_lines(raw: Any) -> list[CartLine]:
    if not isinstance(raw, list):
        raise InvalidInput("The cart is a list of lines.", attr="lines")
    if len(raw) > MAX_LINES:
        raise InvalidInput(f"A cart holds at most {MAX_LINES} lines.", attr="lines")
    lines = []
    for index, entry in enumerate(raw):
        attr = f"lines.{index}"
        if not isinstance(entry, dict):
            raise InvalidInput("Each line names an item and a quantity.", attr=attr)
        unknown = set(entry) - {"item_id", "quantity", "modifier_ids", "note", "unit_price"}
        if unknown:
            raise InvalidInput(f"Unknown field {sorted(unknown)[0]!r}.", attr=attr)
        modifiers = entry.get("modifier_ids", [])
        if not isinstance(modifiers, list) or len(modifiers) > 50:
            raise InvalidInput("Options are a list of ids.", attr=f"{attr}.modifier_ids")
        seen = entry.get("unit_price")
        lines.append(
            CartLine(
                item_id=_whole(entry.get("item_id"), f"{attr}.item_id", maximum=2**62),
                quantity=_whole(
                    entry.get("quantity", 1), f"{attr}.quantity", minimum=1, maximum=99
                ),
                modifier_ids=tuple(
                    _whole(m, f"{attr}.modifier_ids", maximum=2**62) for m in modifiers
                ),
                note=_text(entry, "note", attr=f"{attr}.note"),
                seen_unit_price=None if seen is None else _whole(seen, f"{attr}.unit_price"),
            )
        )
    return lines


def parse_checkout(data: Mapping[str, Any], zone: Any) -> CheckoutRequest:
    """A checkout body (API JSON or the page's form, turned into the same shape)."""
    fulfilment = data.get("fulfilment", Fulfilment.PICKUP)
    if fulfilment not in Fulfilment.values:
        raise InvalidInput("Choose pickup or delivery.", attr="fulfilment")
    scheduled_for = None
    raw_time = data.get("scheduled_for") or ""
    if raw_time not in ("", "asap"):
        try:
            parsed = parse_datetime(raw_time) if isinstance(raw_time, str) else None
        except ValueError:  # well-formed but impossible, e.g. month 13
            parsed = None
        if parsed is None:
            raise InvalidInput("Use a time like 2026-05-01T12:30+03:00.", attr="scheduled_for")
        scheduled_for = parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    email = _text(data, "email", required=True)
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput("Enter a valid email address.", attr="email") from None
    phone = _text(data, "phone", required=fulfilment == Fulfilment.DELIVERY)
    if phone and not PHONE.fullmatch(phone):
        raise InvalidInput("Enter a phone number (digits, spaces, +).", attr="phone")
    address: dict[str, str] = {}
    if fulfilment == Fulfilment.DELIVERY:
        raw_address = data.get("address") or {}
        if not isinstance(raw_address, dict):
            raise InvalidInput("The address has line1, postal_code and city.", attr="address")
        for key, required in ADDRESS_FIELDS.items():
            address[key] = _text(raw_address, key, required=required, attr=f"address.{key}")
    consent = data.get("marketing_consent", False)
    if consent not in (True, False, "on", "true", "1", ""):
        raise InvalidInput("Use true or false.", attr="marketing_consent")
    expected = data.get("expected_total")
    code = _text(data, "promotion_code")
    if len(code) > rules.MAX_CODE_LENGTH:
        raise InvalidInput("That promotion code is not valid.", attr="promotion_code")
    return CheckoutRequest(
        lines=parse_lines(data.get("lines")),
        fulfilment=fulfilment,
        scheduled_for=scheduled_for,
        name=_text(data, "name", required=True),
        email=email.lower(),
        phone=phone,
        address=address,
        delivery_notes=_text(data, "delivery_notes") if address else "",
        tip=_whole(data.get("tip") or 0, "tip"),
        promotion_code=code,
        marketing_consent=consent in (True, "on", "true", "1"),
        payment_method=_text(data, "payment_method") or "in_person",
        expected_total=None if expected in (None, "") else _whole(expected, "expected_total"),
    )


def parse_idempotency_key(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidInput("Idempotency-Key is 1-100 printable characters.", attr="Idempotency-Key")
    return value


# --- When: ASAP or a slot, inside opening hours, lead time and capacity -------------------------


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


def _resolve_time(
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


def _claim_slot(restaurant: Restaurant, schedule: Schedule, slot: datetime, now: datetime) -> None:
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


# --- Pricing for the form and for placing -----------------------------------------------------


def _charges(restaurant: Restaurant, fulfilment: str) -> Charges:
    return Charges(
        currency=restaurant.currency,
        tax_rate=restaurant.tax_rate,
        prices_include_tax=restaurant.prices_include_tax,
        delivery_fee=restaurant.delivery_fee if fulfilment == Fulfilment.DELIVERY else 0,
    )


def _require_menu(restaurant: Restaurant) -> LiveMenu:
    menu = live_menu(restaurant.pk)
    if menu is None:
        empty = Quote(
            currency=restaurant.currency, lines=[], subtotal=0, discount=0, tax=0,
            tax_rate=restaurant.tax_rate, prices_include_tax=restaurant.prices_include_tax,
            delivery_fee=0, tip=0, total=0, menu_version=0,
        )  # fmt: skip
        raise StaleCart(
            f"{restaurant.name} is not taking orders from its menu right now.",
            problems=[{"code": "menu_unavailable", "detail": "The menu is not published."}],
            quote=empty,
        )
    return menu


def _price(
    restaurant: Restaurant,
    menu: LiveMenu,
    lines: list[CartLine],
    *,
    at: datetime,
    fulfilment: str,
    tip: int,
    promotion: Promotion | None,
    now: datetime,
) -> Quote:
    charges = _charges(restaurant, fulfilment)
    quote = price_cart(menu, lines, at=at, charges=charges, tip=tip)
    if promotion is not None:
        rules.check_applies(
            promotion, subtotal=quote.subtotal, now=now, currency=restaurant.currency
        )
        quote = price_cart(
            menu, lines, at=at, charges=charges, tip=tip,
            discount_for=rules.discount_for(promotion), promotion_code=promotion.code,
        )  # fmt: skip
    return quote


def quote(
    restaurant: Restaurant,
    lines: list[CartLine],
    *,
    fulfilment: str = Fulfilment.PICKUP,
    at: datetime | None = None,
    tip: int = 0,
    promotion_code: str = "",
    now: datetime | None = None,
) -> Quote:
    """The cart priced now (problems listed, nothing refused except an unusable code)."""
    now = now or timezone.now()
    menu = _require_menu(restaurant)
    promotion = rules.find(promotion_code) if promotion_code else None
    if promotion_code and promotion is None:
        raise rules.refuse("That promotion code is not valid.", "promotion_unknown")
    return _price(
        restaurant, menu, lines, at=at or now, fulfilment=fulfilment, tip=tip,
        promotion=promotion, now=now,
    )  # fmt: skip


def _refuse_stale(quote: Quote, currency: str, expected_total: int | None) -> None:
    if quote.problems:
        details = " ".join(problem["detail"] for problem in quote.problems)
        raise StaleCart(f"Your cart has changed. {details}", problems=quote.problems, quote=quote)
    if expected_total is not None and expected_total != quote.total:
        raise StaleCart(
            f"The total is now {to_major(quote.total, currency)} {currency} "
            f"(you saw {to_major(expected_total, currency)}). Please check your order.",
            problems=[{"code": "total_changed", "detail": "The total changed."}],
            quote=quote,
        )


# --- Placing ---------------------------------------------------------------------------------


def _existing(key: str, fingerprint: str) -> Order | None:
    order = Order.objects.filter(idempotency_key=key).first()
    if order is not None and order.request_fingerprint != fingerprint:
        raise ConflictError(
            "This Idempotency-Key was used for a different checkout.",
            code="idempotency_key_reused",
            attr="Idempotency-Key",
        )
    return order


def _number(order: Order) -> int:
    """The restaurant's next order number, given to ``order`` (written with 0) in the same
    statement. Checkouts of one restaurant queue on its number row from here to their commit,
    so only the statement that writes the checkout's events follows it."""
    sequence, orders = OrderSequence._meta.db_table, Order._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH next AS (
                INSERT INTO {sequence} AS s (restaurant_id, last_number) VALUES (%s, 1)
                ON CONFLICT (restaurant_id) DO UPDATE SET last_number = s.last_number + 1
                RETURNING last_number
            )
            UPDATE {orders} AS o SET number = next.last_number FROM next
             WHERE o.restaurant_id = %s AND o.id = %s
            RETURNING o.number
            """,  # noqa: S608 - table names are the models', every value a parameter
            [order.restaurant_id, order.restaurant_id, order.pk],
        )
        return int(cursor.fetchone()[0])


def place_order(
    *,
    restaurant: Restaurant,
    request: CheckoutRequest,
    idempotency_key: str | None,
    now: datetime | None = None,
    menu: LiveMenu | None = None,
) -> tuple[Order, bool]:
    """(order, created). The same key with the same request returns the first order.

    Called outside a transaction (the storefront API), it places the order in a transaction
    of its own in the restaurant's tenant context; inside the restaurant's context (the
    storefront pages), in a savepoint of the caller's transaction. Either way a refused or
    failed attempt leaves nothing behind.

    A key is looked up only when placing fails: a new order (nearly every request) costs no
    lookup, and a replay is caught either by the unique key on insert or, when the checkout
    would now be refused (the menu or the slot changed since), by the refusal.

    ``menu``: the :func:`live_menu` as the caller just read it (the storefront API reads it
    with the restaurant, in one query); read here when not given."""
    now = now or timezone.now()
    fingerprint = request.fingerprint()
    # Without a key every submission is its own order (the pages always send one).
    key = idempotency_key or f"auto:{uuid.uuid4()}"
    try:
        with _in_restaurant(restaurant), events.collect():  # one statement for all its events
            order = _place(
                restaurant, request, key=key, fingerprint=fingerprint, now=now, menu=menu
            )
    except IntegrityError as error:
        if "orders_idempotency_key_unique" not in str(error) or not idempotency_key:
            raise
        existing = _replayed(restaurant, key, fingerprint)
        if existing is None:
            raise
        return existing, False
    except DomainError:
        existing = _replayed(restaurant, key, fingerprint) if idempotency_key else None
        if existing is None:
            raise
        return existing, False
    return order, True


def _in_restaurant(restaurant: Restaurant) -> AbstractContextManager[Any]:
    """A savepoint inside the restaurant's context, else a transaction that enters it."""
    current = current_restaurant_or_none()
    if current is None:
        return tenant_context(restaurant)
    if current.pk != restaurant.pk:
        raise TenantMismatch(f"Placing an order of {restaurant.pk} inside {current.pk}'s context.")
    return transaction.atomic()


def _replayed(restaurant: Restaurant, key: str, fingerprint: str) -> Order | None:
    with _in_restaurant(restaurant):
        return _existing(key, fingerprint)


def _place(
    restaurant: Restaurant,
    request: CheckoutRequest,
    *,
    key: str,
    fingerprint: str,
    now: datetime,
    menu: LiveMenu | None,
) -> Order:
    flow = payment_methods.get(request.payment_method)
    if flow is None or not flow.offered(restaurant):
        raise InvalidInput("That way of paying is not offered here.", attr="payment_method")
    enabled = {
        Fulfilment.PICKUP: restaurant.pickup_enabled,
        Fulfilment.DELIVERY: restaurant.delivery_enabled,
    }
    if not enabled[Fulfilment(request.fulfilment)]:
        raise InvalidInput(
            f"{restaurant.name} does not offer {request.fulfilment}.", attr="fulfilment"
        )
    if not request.lines:
        raise InvalidInput("Your cart is empty.", code="empty_cart", attr="lines")
    menu = menu or _require_menu(restaurant)
    if menu.hours_revision is None:
        schedule = Schedule.load(restaurant, now=now)
    else:
        schedule = Schedule.at_revision(restaurant, menu.hours_revision, now=now)
    promised, slot = _resolve_time(restaurant, schedule, request.scheduled_for, now)
    promotion = None
    if request.promotion_code:
        promotion = rules.find(request.promotion_code)
        if promotion is None:
            raise rules.refuse("That promotion code is not valid.", "promotion_unknown")
    quote = _price(
        restaurant, menu, request.lines, at=promised, fulfilment=request.fulfilment,
        tip=request.tip, promotion=promotion, now=now,
    )  # fmt: skip
    _refuse_stale(quote, restaurant.currency, request.expected_total)
    if max(quote.subtotal, quote.total) > MAX_ORDER_AMOUNT:
        raise InvalidInput("That order is too large to take online.", attr="lines")
    if request.fulfilment == Fulfilment.DELIVERY and quote.subtotal < restaurant.delivery_minimum:
        raise InvalidInput(
            f"Delivery needs an order of at least "
            f"{to_major(restaurant.delivery_minimum, restaurant.currency)} {restaurant.currency}.",
            code="delivery_minimum",
            attr="fulfilment",
        )
    if request.tip > max(quote.subtotal, 0):
        raise InvalidInput("A tip can be at most the order's subtotal.", attr="tip")

    status = flow.initial_status
    customer = customer_for_checkout(
        email=request.email,
        name=request.name,
        phone=request.phone,
        consent_requested=request.marketing_consent,
        now=now,
        # Counted now when placed now; a card order counts once it is paid.
        counted_total=quote.total if status == Status.PLACED else None,
    )
    if promotion is not None:
        promotion_count_use(promotion=promotion, customer=customer)
    _claim_slot(restaurant, schedule, slot, now)
    order = Order.objects.create(
        number=0,  # numbered last, below
        status=status,
        fulfilment=request.fulfilment,
        payment_method=flow.method,
        customer=customer,
        contact_name=request.name,
        contact_email=request.email,
        contact_phone=request.phone,
        consent_requested=request.marketing_consent,
        delivery_address=request.address,
        delivery_notes=request.delivery_notes,
        scheduled_for=promised if request.scheduled_for else None,
        promised_at=promised,
        slot_start=slot,
        currency=quote.currency,
        subtotal=quote.subtotal,
        discount=quote.discount,
        tax=quote.tax,
        tax_rate=quote.tax_rate,
        prices_include_tax=quote.prices_include_tax,
        delivery_fee=quote.delivery_fee,
        tip=quote.tip,
        total=quote.total,
        promotion_code=quote.promotion_code,
        menu_version=quote.menu_version,
        idempotency_key=key,
        request_fingerprint=fingerprint,
        placed_at=now if status == Status.PLACED else None,
    )
    # Kept on the order, so whoever answers the checkout needs no read-back.
    order.created_lines = OrderLine.objects.bulk_create(
        [
            OrderLine(
                order=order,
                position=position,
                item_id=line.item_id,
                name=line.name,
                modifiers=line.modifiers,
                unit_price=line.unit_price,
                quantity=line.quantity,
                line_total=line.line_total,
                note=line.note,
            )
            for position, line in enumerate(quote.lines)
        ]
    )
    StatusChange.objects.create(order=order, to_status=status, actor_label="diner", at=now)
    redemption = None
    if promotion is not None:
        redemption = Redemption.objects.create(
            promotion=promotion, order=order, customer=customer, discount=quote.discount
        )
    order.number = _number(order)
    events.publish(*order_events.checkout_events(order, redemption))
    return order
