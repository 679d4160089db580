"""The diner's cart: a signed cookie, so a storefront visit writes nothing to the database.

The cookie holds the lines as the diner saw them (``unit_price`` only to notice a price
change; pricing never reads it), the promotion code applied on the cart page and the
checkout token that makes a double submit place one order. Anything that does not verify
or parse is an empty cart.
"""

from __future__ import annotations

import dataclasses
import secrets
import zlib
from dataclasses import dataclass, field

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponseBase

from nordkestrel.errors import InvalidInput
from orders.checkout_request import parse_idempotency_key, parse_lines
from orders.pricing import MAX_LINES, MAX_QUANTITY, CartLine
from promotions.rules import MAX_CODE_LENGTH

COOKIE_NAME = "cart"
COOKIE_MAX_AGE = 14 * 24 * 3600
# Browsers drop cookies past 4096 bytes (name and attributes included).
MAX_COOKIE_VALUE = 3800


class CartFull(InvalidInput):
    """One more line would make the cart larger than a cookie can carry."""


def _salt(restaurant_id: int) -> str:
    # A cart is signed for one restaurant: it never verifies on another storefront.
    return f"storefront.cart:{restaurant_id}"


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class Cart:
    restaurant_id: int
    lines: list[CartLine] = field(default_factory=list)
    token: str = field(default_factory=new_token)
    promotion_code: str = ""
    changed: bool = False

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    def _modified(self) -> None:
        # Different lines are a different checkout: a new token, so an order placed for the
        # earlier cart is never mistaken for this one.
        self.token = new_token()
        self.changed = True

    def add(self, line: CartLine) -> None:
        """Add ``line`` (the same dish with the same choices adds up); the cart is unchanged
        when it cannot take it."""
        lines = list(self.lines)
        for index, existing in enumerate(lines):
            same = (
                existing.item_id == line.item_id
                and sorted(existing.modifier_ids) == sorted(line.modifier_ids)
                and existing.note == line.note
            )
            if same:
                quantity = existing.quantity + line.quantity
                if quantity > MAX_QUANTITY:
                    raise InvalidInput(
                        f"Your cart can hold at most {MAX_QUANTITY} of the same dish.",
                        attr="quantity",
                    )
                lines[index] = dataclasses.replace(line, quantity=quantity)
                break
        else:
            if len(lines) >= MAX_LINES:
                raise CartFull(f"Your cart holds at most {MAX_LINES} lines.", attr="quantity")
            lines.append(line)
        before, self.lines = self.lines, lines
        if len(self.encode()) > MAX_COOKIE_VALUE:
            self.lines = before
            raise CartFull(
                "Your cart is full. Place this order, then start another.", attr="quantity"
            )
        self._modified()

    def set_quantity(self, index: int, quantity: int) -> None:
        if quantity == 0:
            del self.lines[index]
        else:
            self.lines[index] = dataclasses.replace(self.lines[index], quantity=quantity)
        self._modified()

    def replace(self, lines: list[CartLine]) -> None:
        """The cart refreshed from the server's prices (a stale cart)."""
        if lines == self.lines:
            return
        self.lines = lines
        self._modified()

    def set_code(self, code: str) -> None:
        self.promotion_code = code
        self.changed = True

    def clear(self) -> None:
        self.lines = []
        self.promotion_code = ""
        self.changed = True

    def encode(self) -> str:
        payload = {
            "lines": [line.as_dict() for line in self.lines],
            "token": self.token,
            "code": self.promotion_code,
        }
        return signing.dumps(payload, salt=_salt(self.restaurant_id), compress=True)

    def store(self, response: HttpResponseBase) -> None:
        """Write the cart to ``response`` if this request changed it."""
        if not self.changed:
            return
        if not self.lines and not self.promotion_code:
            response.delete_cookie(COOKIE_NAME, samesite="Lax")
        else:
            # Host-only (no Domain): one storefront never sees another's cart.
            response.set_cookie(
                COOKIE_NAME,
                self.encode(),
                max_age=COOKIE_MAX_AGE,
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )


def _decode(raw: str, restaurant_id: int) -> Cart | None:
    try:
        payload = signing.loads(raw, salt=_salt(restaurant_id), max_age=COOKIE_MAX_AGE)
    except (signing.BadSignature, ValueError, UnicodeDecodeError, zlib.error):
        return None
    if not isinstance(payload, dict):
        return None
    try:
        lines = parse_lines(payload.get("lines", []))
        token = payload.get("token")
        token = parse_idempotency_key(token if isinstance(token, str) else None)
    except InvalidInput:
        return None
    code = payload.get("code", "")
    if not isinstance(code, str) or len(code) > MAX_CODE_LENGTH:
        code = ""
    cart = Cart(restaurant_id, lines=lines, token=token or new_token(), promotion_code=code)
    cart.changed = token is None  # keep the new token, so the checkout form's stays valid
    return cart


def load(request: HttpRequest, restaurant_id: int) -> Cart:
    raw = request.COOKIES.get(COOKIE_NAME, "")
    cart = _decode(raw, restaurant_id) if raw else None
    if cart is None:
        cart = Cart(restaurant_id)
        # A garbled cookie is removed, not sent again with every request.
        cart.changed = bool(raw)
    return cart
