"""Pricing on the server: from the published menu and the current sold-out state only.

Nothing the browser says about money is used except to notice that what the diner saw
(``seen_unit_price``, ``expected_total``) is no longer true, so the cart can be refreshed.
Amounts are integer minor units; each rounding happens once, half up, on the order's totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from menus.storefront import LiveMenu
from nordkestrel.errors import ConflictError
from nordkestrel.money import to_major

MAX_LINES = 50
MAX_QUANTITY = 99


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class CartLine:
    item_id: int
    quantity: int
    modifier_ids: tuple[int, ...] = ()
    note: str = ""
    # What the diner was shown, to notice a price change; never used to price.
    seen_unit_price: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "quantity": self.quantity,
            "modifier_ids": list(self.modifier_ids),
            "note": self.note,
            "unit_price": self.seen_unit_price,
        }


@dataclass(frozen=True)
class PricedLine:
    item_id: int
    name: str
    modifiers: list[dict[str, Any]]
    unit_price: int
    quantity: int
    line_total: int
    note: str

    def as_cart_line(self) -> CartLine:
        return CartLine(
            item_id=self.item_id,
            quantity=self.quantity,
            modifier_ids=tuple(m["id"] for m in self.modifiers),
            note=self.note,
            seen_unit_price=self.unit_price,
        )


@dataclass
class Quote:
    currency: str
    lines: list[PricedLine]
    subtotal: int
    discount: int
    tax: int
    tax_rate: Decimal
    prices_include_tax: bool
    delivery_fee: int
    tip: int
    total: int
    menu_version: int
    promotion_code: str = ""
    problems: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "menu_version": self.menu_version,
            "lines": [
                {
                    "item_id": line.item_id,
                    "name": line.name,
                    "modifiers": line.modifiers,
                    "modifier_ids": [m["id"] for m in line.modifiers],
                    "unit_price": line.unit_price,
                    "quantity": line.quantity,
                    "line_total": line.line_total,
                    "note": line.note,
                }
                for line in self.lines
            ],
            "subtotal": self.subtotal,
            "discount": self.discount,
            "promotion_code": self.promotion_code,
            "tax": self.tax,
            "tax_rate": str(self.tax_rate),
            "prices_include_tax": self.prices_include_tax,
            "delivery_fee": self.delivery_fee,
            "tip": self.tip,
            "total": self.total,
        }


class StaleCart(ConflictError):
    """The cart no longer matches the menu: the body says what changed and what is left."""

    code = "stale_cart"

    def __init__(self, detail: str, *, problems: list[dict[str, Any]], quote: Quote) -> None:
        super().__init__(detail)
        self.problems = problems
        self.quote = quote

    def body(self) -> dict[str, Any]:
        return {**super().body(), "problems": self.problems, "cart": self.quote.as_dict()}


def _price_line(
    menu: LiveMenu, line: CartLine, available: set[int], index: int
) -> tuple[PricedLine | None, dict[str, Any] | None]:
    """The line priced from the menu, or why it cannot be ordered (and then no line)."""
    items = menu.document["items"]
    item = items.get(str(line.item_id))
    name = item["name"] if item else "An item"

    def problem(code: str, detail: str) -> tuple[None, dict[str, Any]]:
        return None, {"line": index, "item_id": line.item_id, "code": code, "detail": detail}

    if item is None or line.item_id not in available:
        return problem("unavailable", f"{name} is not on the menu at that time.")
    if line.item_id in menu.sold_out_items:
        return problem("sold_out", f"{name} is sold out.")
    if not 1 <= line.quantity <= MAX_QUANTITY:
        return problem("invalid_quantity", f"Order between 1 and {MAX_QUANTITY} of {name}.")
    groups = menu.document["modifier_groups"]
    chosen = list(dict.fromkeys(line.modifier_ids))
    by_group: dict[int, list[dict[str, Any]]] = {}
    group_of: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for group_id in item["modifier_groups"]:
        group = groups.get(str(group_id))
        if group is None:
            continue
        by_group[group_id] = []
        for modifier in group["modifiers"]:
            group_of[modifier["id"]] = (group, modifier)
    for modifier_id in chosen:
        if modifier_id not in group_of:
            return problem("invalid_options", f"That option is not available for {name}.")
        group, modifier = group_of[modifier_id]
        if modifier_id in menu.sold_out_modifiers:
            return problem("sold_out", f"{modifier['name']} ({name}) is sold out.")
        by_group[group["id"]].append(modifier)
    snapshot = []
    for group_id, selected in by_group.items():
        group = groups[str(group_id)]
        minimum = max(group["min"], 1 if group["required"] else 0)
        if len(selected) < minimum:
            return problem(
                "invalid_options", f"Choose at least {minimum} of {group['name']} for {name}."
            )
        if len(selected) > group["max"]:
            return problem(
                "invalid_options", f"Choose at most {group['max']} of {group['name']} for {name}."
            )
        snapshot += [
            {
                "id": m["id"],
                "group": group["name"],
                "name": m["name"],
                "price_delta": m["price_delta"],
            }
            for m in selected
        ]
    unit_price = max(0, item["price"] + sum(m["price_delta"] for m in snapshot))
    priced = PricedLine(
        item_id=line.item_id,
        name=item["name"],
        modifiers=snapshot,
        unit_price=unit_price,
        quantity=line.quantity,
        line_total=unit_price * line.quantity,
        note=line.note,
    )
    if line.seen_unit_price is not None and line.seen_unit_price != unit_price:
        currency = menu.document["restaurant"]["currency"]
        return priced, {
            "line": index,
            "item_id": line.item_id,
            "code": "price_changed",
            "detail": (
                f"{item['name']} now costs {to_major(unit_price, currency)} {currency} "
                f"(was {to_major(line.seen_unit_price, currency)})."
            ),
        }
    return priced, None


@dataclass(frozen=True)
class Charges:
    """The restaurant's terms that apply to this order."""

    currency: str
    tax_rate: Decimal
    prices_include_tax: bool
    delivery_fee: int


def price_cart(
    menu: LiveMenu,
    lines: list[CartLine],
    *,
    at: datetime,
    charges: Charges,
    tip: int = 0,
    discount_for: Any = None,
    promotion_code: str = "",
) -> Quote:
    """Price ``lines`` for an order due ``at``. ``problems`` lists every line that changed or
    cannot be ordered; ``lines`` keeps those that can (at today's price).

    ``discount_for(subtotal)`` gives the promotion's discount, when a code applies.
    """
    available = menu.items_available_at(at)
    priced: list[PricedLine] = []
    problems: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        result, problem = _price_line(menu, line, available, index)
        if result is not None:
            priced.append(result)
        if problem is not None:
            problems.append(problem)
    subtotal = sum(line.line_total for line in priced)
    discount = min(subtotal, discount_for(subtotal)) if discount_for else 0
    taxable = subtotal - discount
    rate = charges.tax_rate
    if charges.prices_include_tax:
        tax = round_half_up(Decimal(taxable) * rate / (Decimal(100) + rate))
        total = taxable + charges.delivery_fee + tip
    else:
        tax = round_half_up(Decimal(taxable) * rate / Decimal(100))
        total = taxable + tax + charges.delivery_fee + tip
    return Quote(
        currency=charges.currency,
        lines=priced,
        subtotal=subtotal,
        discount=discount,
        tax=tax,
        tax_rate=rate,
        prices_include_tax=charges.prices_include_tax,
        delivery_fee=charges.delivery_fee,
        tip=tip,
        total=total,
        menu_version=menu.version,
        promotion_code=promotion_code if discount_for else "",
        problems=problems,
    )
