"""The checkout request: what a diner sends, parsed and validated into :class:`CheckoutRequest`.

Storefront pages (their form, turned into the same shape) and the storefront API both parse
here; :mod:`orders.placement` places what was parsed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.dateparse import parse_datetime

from nordkestrel.errors import InvalidInput
from nordkestrel.text import storable
from orders.models import Fulfilment
from orders.pricing import MAX_LINES, CartLine
from promotions import rules

PHONE = re.compile(r"\+?[0-9 ()\-]{6,30}")
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,100}")
TEXT_LIMITS = {"name": 120, "phone": 32, "delivery_notes": 300, "note": 200}
ADDRESS_FIELDS = {"line1": True, "line2": False, "postal_code": True, "city": True}


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
