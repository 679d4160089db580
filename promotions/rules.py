"""Whether a code applies to an order, and what it takes off. Redemption itself is in
services.promotion_count_use; these checks read, they never count a use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from nordkestrel.errors import InvalidInput
from nordkestrel.money import to_major
from nordkestrel.text import storable
from promotions.models import Promotion

MAX_CODE_LENGTH = 32


def find(code: str) -> Promotion | None:
    code = code.strip()
    if not code or len(code) > MAX_CODE_LENGTH or not storable(code):
        return None
    return Promotion.objects.filter(code__iexact=code).first()


def discount_for(promotion: Promotion) -> Callable[[int], int]:
    def discount(subtotal: int) -> int:
        if promotion.kind == Promotion.Kind.PERCENT:
            off = Decimal(subtotal) * promotion.value / 100
            return min(subtotal, int(off.quantize(Decimal(1), rounding="ROUND_HALF_UP")))
        return min(subtotal, promotion.value)

    return discount


def refuse(detail: str, code: str) -> InvalidInput:
    return InvalidInput(detail, code=code, attr="promotion_code")


def check_applies(
    promotion: Promotion | None, *, subtotal: int, now: datetime, currency: str
) -> Promotion:
    """The order-independent rules: the code exists, is live, and the order is big enough."""
    if promotion is None or not promotion.active:
        raise refuse("That promotion code is not valid.", "promotion_unknown")
    if promotion.starts_at and now < promotion.starts_at:
        raise refuse("That promotion code is not valid yet.", "promotion_not_started")
    if promotion.ends_at and now >= promotion.ends_at:
        raise refuse("That promotion code has expired.", "promotion_expired")
    if (
        promotion.max_redemptions is not None
        and promotion.redemption_count >= promotion.max_redemptions
    ):
        raise refuse("That promotion code has been used up.", "promotion_used_up")
    if subtotal < promotion.min_subtotal:
        raise refuse(
            f"That code needs an order of at least {to_major(promotion.min_subtotal, currency)} "
            f"{currency}.",
            "promotion_minimum",
        )
    return promotion
