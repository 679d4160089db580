"""What a diner sends to price a cart or to check out, validated in one place for the
storefront's pages and its API.

Each body has one strict serializer: an unknown field (``restaurant``, ``total``, a typo) is a
400 naming it, and a body that is not an object is a 400. Its declared fields are the body's
shape in the OpenAPI document; its ``to_internal_value`` turns the body into what checkout
takes (a :class:`~orders.checkout_request.CheckoutRequest`, or a :class:`QuoteRequest`), with
the checkout's own rules and messages, so the pages (their form, turned into the API's shape)
and the API refuse the same input with the same words. An error is a 400 whose ``attr`` names
the field (``lines.0.note``).

The serializers need ``zone`` (the restaurant's time zone, for a time without an offset) in
their context, and the quote also ``now`` (a time to price at lies in the coming days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from nordkestrel.errors import InvalidInput
from nordkestrel.serializers import StrictSerializer
from nordkestrel.text import storable
from orders.checkout_request import CheckoutRequest, parse_checkout, parse_lines
from orders.models import Fulfilment, PaymentMethod
from orders.pricing import MAX_LINES, MAX_QUANTITY, CartLine
from promotions.rules import MAX_CODE_LENGTH
from tenants.hours import SCHEDULE_DAYS

MAX_TIP = 10_000_000
MAX_ID = 2**62
# The key of the parsed request in a serializer's validated data.
PARSED = "request"


@dataclass(frozen=True)
class QuoteRequest:
    lines: list[CartLine]
    fulfilment: str
    scheduled_for: datetime | None  # None: as soon as possible
    tip: int = 0
    promotion_code: str = ""


def _refused(error: InvalidInput) -> serializers.ValidationError:
    """The checkout's refusal as a validation error on the field it names."""
    attr = error.attr or "non_field_errors"
    return serializers.ValidationError({attr: [serializers.ErrorDetail(error.detail, error.code)]})


def _quote_time(raw: Any, zone: Any, now: datetime) -> datetime | None:
    """A time to price the cart at: only the coming days matter (checkout checks the slot)."""
    if raw in (None, "", "asap"):
        return None
    try:
        parsed = parse_datetime(raw) if isinstance(raw, str) else None
    except ValueError:  # well-formed but impossible, e.g. February 30
        parsed = None
    if parsed is None:
        raise InvalidInput("Use a time like 2026-05-01T12:30+03:00.", attr="scheduled_for")
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    if not now - timedelta(days=1) <= parsed <= now + timedelta(days=SCHEDULE_DAYS + 1):
        raise InvalidInput("Choose a time in the coming days.", attr="scheduled_for")
    return parsed


def _quote_tip(raw: Any) -> int:
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_TIP:
        raise InvalidInput(f"Use a whole number from 0 to {MAX_TIP}.", attr="tip")
    return raw


def _quote_code(raw: Any) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str) or not storable(raw) or len(raw.strip()) > MAX_CODE_LENGTH:
        raise InvalidInput("That promotion code is not valid.", attr="promotion_code")
    return raw.strip()


class CartLineSerializer(StrictSerializer):
    item_id = serializers.IntegerField(min_value=0, max_value=MAX_ID)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, required=False)
    modifier_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_ID), max_length=50, required=False
    )
    note = serializers.CharField(max_length=200, allow_blank=True, required=False)
    unit_price = serializers.IntegerField(
        min_value=0,
        required=False,
        help_text="The unit price the diner was shown; a different price now is a problem "
        "(a quote lists it, checkout answers 409 stale_cart).",
    )


class QuoteRequestSerializer(StrictSerializer):
    lines = serializers.ListField(child=CartLineSerializer(), max_length=MAX_LINES)
    fulfilment = serializers.ChoiceField(choices=Fulfilment.choices, required=False)
    scheduled_for = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Omitted or null: as soon as possible."
    )
    tip = serializers.IntegerField(min_value=0, max_value=MAX_TIP, required=False)
    promotion_code = serializers.CharField(
        max_length=MAX_CODE_LENGTH, allow_blank=True, required=False
    )

    def run_validators(self, value: Any) -> None:
        """Nothing to run: no validators, no read-only defaults (DRF's own would build the
        bound fields, a copy of every declared field, on every checkout)."""

    def to_internal_value(self, data: Any) -> dict[str, QuoteRequest]:
        self.refuse_unknown_fields(data)
        try:
            lines = parse_lines(data.get("lines", []))
            fulfilment = data.get("fulfilment") or Fulfilment.PICKUP
            if fulfilment not in Fulfilment.values:
                raise InvalidInput("Choose pickup or delivery.", attr="fulfilment")
            scheduled_for = _quote_time(
                data.get("scheduled_for"), self.context["zone"], self.context["now"]
            )
            return {
                PARSED: QuoteRequest(
                    lines=lines,
                    fulfilment=fulfilment,
                    scheduled_for=scheduled_for,
                    tip=_quote_tip(data.get("tip")),
                    promotion_code=_quote_code(data.get("promotion_code")),
                )
            }
        except InvalidInput as error:
            raise _refused(error) from None


class AddressSerializer(StrictSerializer):
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(max_length=200, allow_blank=True, required=False)
    postal_code = serializers.CharField(max_length=200)
    city = serializers.CharField(max_length=200)


class CheckoutRequestSerializer(QuoteRequestSerializer):
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(max_length=200)
    phone = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Required for delivery."
    )
    address = AddressSerializer(required=False, help_text="Required for delivery.")
    delivery_notes = serializers.CharField(max_length=200, required=False, allow_blank=True)
    marketing_consent = serializers.BooleanField(required=False)
    payment_method = serializers.ChoiceField(choices=PaymentMethod.choices, required=False)
    expected_total = serializers.IntegerField(
        min_value=0,
        required=False,
        help_text="The total the diner was shown; a different total now is 409 stale_cart.",
    )

    def to_internal_value(self, data: Any) -> dict[str, CheckoutRequest]:  # type: ignore[override]
        self.refuse_unknown_fields(data)
        try:
            return {PARSED: parse_checkout(data, self.context["zone"])}
        except InvalidInput as error:
            raise _refused(error) from None
