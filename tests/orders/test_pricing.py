"""price_cart on a hand-built published menu: what a diner is charged, to the cent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from menus.storefront import LiveMenu
from orders.pricing import CartLine, Charges, price_cart, round_half_up
from promotions.models import Promotion
from promotions.rules import discount_for

# A Monday, 12:00 UTC: lunch time, outside the breakfast window.
NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BREAKFAST_TIME = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

BURGER, FRIES, SODA, PANCAKES, TEA, PLATTER, NIGHTCAP = 10, 11, 12, 13, 14, 15, 16
SIZE, EXTRAS, DIP, SIDES = 100, 101, 102, 103
REGULAR, LARGE, CHEESE, BACON, EGG, MAYO, SALAD, SLAW, BEANS = (
    1000, 1001, 1010, 1011, 1012, 1020, 1030, 1031, 1032,
)  # fmt: skip

EUR_EXCLUSIVE_ZERO = Charges(
    currency="EUR", tax_rate=Decimal(0), prices_include_tax=False, delivery_fee=0
)


def _item(item_id: int, name: str, price: int, groups: list[int] | None = None) -> dict:
    return {
        "id": item_id, "name": name, "description": "", "price": price, "image": "",
        "image_url": None, "dietary_tags": [], "modifier_groups": groups or [],
    }  # fmt: skip


def _group(group_id: int, name: str, low: int, high: int, required: bool, modifiers) -> dict:
    return {
        "id": group_id, "name": name, "min": low, "max": high, "required": required,
        "modifiers": [{"id": i, "name": n, "price_delta": d} for i, n, d in modifiers],
    }  # fmt: skip


def live_menu(
    *,
    currency: str = "EUR",
    sold_out_items: frozenset[int] = frozenset(),
    sold_out_modifiers: frozenset[int] = frozenset(),
    prices: dict[int, int] | None = None,
) -> LiveMenu:
    prices = {BURGER: 1200, FRIES: 450, SODA: 300, PANCAKES: 800, TEA: 100, PLATTER: 0,
              NIGHTCAP: 900, **(prices or {})}  # fmt: skip
    every_day = list(range(7))
    document = {
        "restaurant": {"name": "Ours", "currency": currency, "timezone": "UTC"},
        "menus": [
            {
                "id": 1, "name": "All day", "description": "", "availability": [],
                "categories": [{"id": 1, "name": "Mains", "description": "",
                                "items": [BURGER, FRIES, SODA, TEA, PLATTER]}],
            },
            {
                "id": 2, "name": "Breakfast", "description": "",
                "availability": [{"weekdays": every_day, "start": "08:00", "end": "11:00"}],
                "categories": [{"id": 2, "name": "Morning", "description": "",
                                "items": [PANCAKES]}],
            },
            {
                # Friday night past midnight: the window belongs to the day it starts.
                "id": 3, "name": "Late", "description": "",
                "availability": [{"weekdays": [4], "start": "22:00", "end": "02:00"}],
                "categories": [{"id": 3, "name": "Bar", "description": "",
                                "items": [NIGHTCAP]}],
            },
        ],
        "items": {
            str(BURGER): _item(BURGER, "Burger", prices[BURGER], [SIZE, EXTRAS]),
            str(FRIES): _item(FRIES, "Fries", prices[FRIES], [DIP]),
            str(SODA): _item(SODA, "Soda", prices[SODA]),
            str(PANCAKES): _item(PANCAKES, "Pancakes", prices[PANCAKES]),
            str(TEA): _item(TEA, "Tea", prices[TEA]),
            str(PLATTER): _item(PLATTER, "Platter", prices[PLATTER], [SIDES]),
            str(NIGHTCAP): _item(NIGHTCAP, "Nightcap", prices[NIGHTCAP]),
        },
        "modifier_groups": {
            str(SIZE): _group(SIZE, "Size", 1, 1, True, [(REGULAR, "Regular", 0),
                                                        (LARGE, "Large", 300)]),
            str(EXTRAS): _group(EXTRAS, "Extras", 0, 2, False, [
                (CHEESE, "Cheese", 150), (BACON, "Bacon", 200), (EGG, "Egg", 100)]),
            str(DIP): _group(DIP, "Dip", 0, 1, False, [(MAYO, "Mayo", 50)]),
            str(SIDES): _group(SIDES, "Sides", 2, 3, False, [
                (SALAD, "Salad", 400), (SLAW, "Slaw", 350), (BEANS, "Beans", 300)]),
        },
    }  # fmt: skip
    return LiveMenu(
        version=7,
        document=document,
        sold_out_items=sold_out_items,
        sold_out_modifiers=sold_out_modifiers,
    )


def charges(rate: str = "0", *, inclusive: bool = False, fee: int = 0, currency: str = "EUR"):
    return Charges(
        currency=currency, tax_rate=Decimal(rate), prices_include_tax=inclusive, delivery_fee=fee
    )


def burger(*modifiers: int, quantity: int = 1, seen: int | None = None) -> CartLine:
    return CartLine(item_id=BURGER, quantity=quantity, modifier_ids=modifiers, seen_unit_price=seen)


def line(item_id: int, quantity: int = 1, *modifiers: int) -> CartLine:
    return CartLine(item_id=item_id, quantity=quantity, modifier_ids=modifiers)


def price(lines, *, menu=None, at=NOON, terms=EUR_EXCLUSIVE_ZERO, **kwargs):
    return price_cart(menu or live_menu(), lines, at=at, charges=terms, **kwargs)


def percent(value: int):
    return discount_for(Promotion(code="P", kind=Promotion.Kind.PERCENT, value=value))


def fixed(value: int):
    return discount_for(Promotion(code="F", kind=Promotion.Kind.FIXED, value=value))


def codes(quote) -> list[str]:
    return [problem["code"] for problem in quote.problems]


class TestLines:
    def test_modifier_deltas_make_the_unit_price(self):
        quote = price([burger(LARGE, CHEESE, BACON, quantity=2)])
        (priced,) = quote.lines
        assert priced.unit_price == 1200 + 300 + 150 + 200
        assert priced.line_total == 2 * 1850
        assert quote.subtotal == 3700
        assert quote.problems == []
        assert [(m["group"], m["name"], m["price_delta"]) for m in priced.modifiers] == [
            ("Size", "Large", 300),
            ("Extras", "Cheese", 150),
            ("Extras", "Bacon", 200),
        ]

    def test_the_subtotal_adds_every_line(self):
        quote = price([burger(REGULAR), line(FRIES, 3, MAYO), line(SODA, 2)])
        assert [(pl.name, pl.line_total) for pl in quote.lines] == [
            ("Burger", 1200), ("Fries", 1500), ("Soda", 600),
        ]  # fmt: skip
        assert quote.subtotal == 3300

    def test_a_required_group_left_out_is_refused(self):
        quote = price([burger(CHEESE), line(SODA)])
        assert codes(quote) == ["invalid_options"]
        assert "Size" in quote.problems[0]["detail"]
        assert quote.problems[0]["line"] == 0
        assert [pl.name for pl in quote.lines] == ["Soda"], "the rest of the cart is priced"
        assert quote.subtotal == 300

    def test_below_a_groups_minimum_is_refused(self):
        assert codes(price([line(PLATTER, 1, SALAD)])) == ["invalid_options"]
        assert codes(price([line(PLATTER, 1)])) == ["invalid_options"]
        ok = price([line(PLATTER, 1, SALAD, SLAW)])
        assert ok.problems == [] and ok.subtotal == 750

    def test_above_a_groups_maximum_is_refused(self):
        quote = price([burger(REGULAR, CHEESE, BACON, EGG)])
        assert codes(quote) == ["invalid_options"]
        assert "at most 2" in quote.problems[0]["detail"]
        assert quote.lines == []
        assert codes(price([burger(REGULAR, LARGE)])) == ["invalid_options"], "size is one"

    def test_an_option_of_another_items_group_is_refused(self):
        quote = price([burger(REGULAR, MAYO)])
        assert codes(quote) == ["invalid_options"]
        assert quote.subtotal == 0

    def test_an_unknown_option_is_refused(self):
        assert codes(price([burger(REGULAR, 999_999)])) == ["invalid_options"]

    def test_a_repeated_option_counts_once(self):
        quote = price([burger(REGULAR, CHEESE, CHEESE, CHEESE, BACON, BACON)])
        assert quote.problems == [], "two distinct extras are within the maximum of 2"
        assert quote.lines[0].unit_price == 1200 + 150 + 200
        assert [m["name"] for m in quote.lines[0].modifiers] == ["Regular", "Cheese", "Bacon"]

    def test_a_sold_out_item_is_refused(self):
        quote = price([line(SODA), line(FRIES)], menu=live_menu(sold_out_items=frozenset({SODA})))
        assert codes(quote) == ["sold_out"]
        assert quote.problems[0]["item_id"] == SODA
        assert "Soda" in quote.problems[0]["detail"]
        assert [pl.name for pl in quote.lines] == ["Fries"]

    def test_a_sold_out_option_is_refused_only_when_chosen(self):
        menu = live_menu(sold_out_modifiers=frozenset({BACON}))
        refused = price([burger(REGULAR, BACON)], menu=menu)
        assert codes(refused) == ["sold_out"]
        assert "Bacon" in refused.problems[0]["detail"]
        assert price([burger(REGULAR, CHEESE)], menu=menu).problems == []

    def test_an_item_outside_its_menus_window_is_unavailable(self):
        at_noon = price([line(PANCAKES)])
        assert codes(at_noon) == ["unavailable"]
        assert at_noon.subtotal == 0
        at_breakfast = price([line(PANCAKES)], at=BREAKFAST_TIME)
        assert at_breakfast.problems == [] and at_breakfast.subtotal == 800
        closing = datetime(2026, 6, 1, 11, 0, tzinfo=UTC)
        assert codes(price([line(PANCAKES)], at=closing)) == ["unavailable"], "end is exclusive"

    def test_a_window_past_midnight_belongs_to_the_day_it_starts(self):
        friday_late = datetime(2026, 6, 5, 23, 0, tzinfo=UTC)
        saturday_early = datetime(2026, 6, 6, 1, 30, tzinfo=UTC)
        saturday_late = datetime(2026, 6, 6, 23, 0, tzinfo=UTC)
        assert price([line(NIGHTCAP)], at=friday_late).problems == []
        assert price([line(NIGHTCAP)], at=saturday_early).problems == []
        assert codes(price([line(NIGHTCAP)], at=saturday_late)) == ["unavailable"]

    def test_an_item_not_on_the_menu_is_unavailable(self):
        assert codes(price([line(424242)])) == ["unavailable"]

    @pytest.mark.parametrize("quantity", [0, -1, 100])
    def test_quantity_out_of_bounds_is_refused(self, quantity):
        assert codes(price([line(SODA, quantity)])) == ["invalid_quantity"]

    @pytest.mark.parametrize("quantity", [1, 99])
    def test_quantity_bounds_are_inclusive(self, quantity):
        quote = price([line(SODA, quantity)])
        assert quote.problems == [] and quote.subtotal == 300 * quantity

    def test_every_problem_is_listed_with_its_line(self):
        menu = live_menu(sold_out_items=frozenset({FRIES}))
        quote = price([line(SODA), line(FRIES), burger(), line(PANCAKES)], menu=menu)
        assert [(p["line"], p["code"]) for p in quote.problems] == [
            (1, "sold_out"), (2, "invalid_options"), (3, "unavailable"),
        ]  # fmt: skip
        assert quote.subtotal == 300


class TestTax:
    def test_exclusive_tax_rounds_an_exact_half_up(self):
        quote = price([line(TEA)], terms=charges("12.5"))
        assert quote.tax == 13, "12.5 cents rounds half up (half-even would give 12)"
        assert quote.total == 113

    def test_exclusive_tax_below_half_rounds_down(self):
        quote = price([line(TEA)], terms=charges("12.4"))
        assert (quote.tax, quote.total) == (12, 112)

    def test_inclusive_tax_is_the_share_inside_the_price(self):
        quote = price([line(TEA, 10)], terms=charges("24", inclusive=True))
        assert quote.tax == 194, "1000 * 24 / 124 = 193.548..."
        assert quote.total == 1000, "the price already holds the tax"
        assert quote.prices_include_tax is True

    def test_inclusive_tax_rounds_an_exact_half_up(self):
        # 1011 * 20 / 120 = 168.5 exactly.
        quote = price([line(TEA, 1), line(SODA, 3)], terms=charges("20", inclusive=True),
                      menu=live_menu(prices={TEA: 111}))  # fmt: skip
        assert quote.subtotal == 1011
        assert quote.tax == 169

    def test_the_tax_rate_is_reported(self):
        quote = price([line(TEA)], terms=charges("14"))
        assert quote.as_dict()["tax_rate"] == "14"
        assert quote.tax == 14

    def test_zero_rate_means_no_tax(self):
        quote = price([burger(REGULAR)])
        assert (quote.tax, quote.total) == (0, 1200)

    def test_round_half_up(self):
        assert [round_half_up(Decimal(v)) for v in ("0.5", "1.5", "2.5", "2.4999")] == [1, 2, 3, 2]


class TestDiscounts:
    def test_a_percent_discount_rounds_half_up(self):
        quote = price([line(FRIES, 2), line(TEA, 1), line(SODA, 1)], discount_for=percent(15),
                      promotion_code="LUNCH15", menu=live_menu(prices={TEA: 150}))  # fmt: skip
        assert quote.subtotal == 1350
        assert quote.discount == 203, "15% of 1350 = 202.5"
        other = price([line(TEA, 10), line(SODA)], discount_for=percent(15),
                      menu=live_menu(prices={TEA: 75}))  # fmt: skip
        assert (other.subtotal, other.discount) == (1050, 158), "15% of 1050 = 157.5"
        even = price([line(TEA, 1)], discount_for=percent(10), menu=live_menu(prices={TEA: 1025}))
        assert even.discount == 103, "102.5 rounds up (half-even would give 102)"

    def test_a_fixed_discount_is_capped_at_the_subtotal(self):
        quote = price([line(SODA)], discount_for=fixed(5000), tip=100,
                      terms=charges("10", fee=250))  # fmt: skip
        assert quote.discount == 300
        assert quote.tax == 0
        assert quote.total == 250 + 100, "only the fee and the tip are left"

    def test_the_discount_comes_before_tax(self):
        quote = price([line(TEA, 10)], discount_for=fixed(100), terms=charges("10"))
        assert (quote.subtotal, quote.discount) == (1000, 100)
        assert quote.tax == 90, "10% of 900, not of 1000"
        assert quote.total == 990
        inclusive = price([line(TEA, 10)], discount_for=fixed(100),
                          terms=charges("24", inclusive=True))  # fmt: skip
        assert inclusive.tax == 174, "900 * 24 / 124 = 174.19..."
        assert inclusive.total == 900

    def test_the_code_is_kept_only_with_a_discount(self):
        with_code = price([line(SODA)], discount_for=percent(10), promotion_code="TEN")
        assert with_code.as_dict()["promotion_code"] == "TEN"
        assert price([line(SODA)], promotion_code="TEN").promotion_code == ""

    def test_a_hundred_percent_discount_leaves_nothing_to_tax(self):
        quote = price([burger(LARGE)], discount_for=percent(100), terms=charges("14"))
        assert (quote.discount, quote.tax, quote.total) == (1500, 0, 0)


class TestFeesAndTips:
    def test_delivery_fee_and_tip_are_added_and_never_taxed(self):
        quote = price([line(TEA, 10)], tip=300, terms=charges("10", fee=500))
        assert quote.tax == 100
        assert (quote.delivery_fee, quote.tip) == (500, 300)
        assert quote.total == 1000 + 100 + 500 + 300
        inclusive = price([line(TEA, 10)], tip=300, terms=charges("24", inclusive=True, fee=500))
        assert inclusive.tax == 194
        assert inclusive.total == 1000 + 500 + 300

    @pytest.mark.parametrize("inclusive", [False, True])
    @pytest.mark.parametrize(
        ("rate", "fee", "tip", "discount"),
        [("0", 0, 0, None), ("14", 390, 120, percent(12)), ("25.5", 0, 77, fixed(333)),
         ("7.25", 1000, 0, percent(33))],
    )  # fmt: skip
    def test_the_total_identity(self, inclusive, rate, fee, tip, discount):
        quote = price([burger(LARGE, EGG, quantity=3), line(FRIES, 2, MAYO), line(SODA)],
                      tip=tip, discount_for=discount,
                      terms=charges(rate, inclusive=inclusive, fee=fee))  # fmt: skip
        assert quote.subtotal == 3 * 1600 + 2 * 500 + 300
        tax_on_top = 0 if inclusive else quote.tax
        assert quote.total == quote.subtotal - quote.discount + tax_on_top + fee + tip
        base = Decimal(quote.subtotal - quote.discount) * Decimal(rate)
        expected = base / (100 + Decimal(rate)) if inclusive else base / 100
        assert quote.tax == round_half_up(expected)


class TestCurrencies:
    def test_zero_decimal_currency_amounts_are_whole_yen(self):
        menu = live_menu(currency="JPY", prices={BURGER: 1000, TEA: 105})
        quote = price([burger(LARGE), line(TEA)], menu=menu,
                      terms=charges("10", currency="JPY", fee=300), tip=200)  # fmt: skip
        assert quote.currency == "JPY"
        assert quote.subtotal == 1300 + 105
        assert quote.tax == 141, "10% of 1405 yen = 140.5"
        assert quote.total == 1405 + 141 + 300 + 200

    def test_a_price_change_in_yen_speaks_yen(self):
        menu = live_menu(currency="JPY", prices={BURGER: 1500})
        quote = price([burger(REGULAR, seen=1200)], menu=menu, terms=charges(currency="JPY"))
        assert codes(quote) == ["price_changed"]
        assert "1500 JPY" in quote.problems[0]["detail"]
        assert "(was 1200)" in quote.problems[0]["detail"]


class TestPriceChanges:
    def test_a_changed_price_is_a_problem_with_the_new_price_kept(self):
        quote = price([burger(LARGE, seen=1400), line(SODA)], menu=live_menu(prices={BURGER: 1250}))
        assert codes(quote) == ["price_changed"]
        assert quote.problems[0]["item_id"] == BURGER
        assert "15.50 EUR" in quote.problems[0]["detail"]
        assert "(was 14.00)" in quote.problems[0]["detail"]
        assert [(pl.name, pl.unit_price) for pl in quote.lines] == [("Burger", 1550), ("Soda", 300)]
        assert quote.subtotal == 1850
        refreshed = quote.lines[0].as_cart_line()
        assert refreshed.seen_unit_price == 1550
        assert price([refreshed], menu=live_menu(prices={BURGER: 1250})).problems == []

    def test_the_price_the_diner_saw_is_never_charged(self):
        quote = price([burger(REGULAR, seen=1)])
        assert quote.lines[0].unit_price == 1200
        assert quote.total == 1200

    def test_the_same_price_is_no_problem(self):
        assert price([burger(LARGE, seen=1500)]).problems == []

    def test_the_quote_names_the_menu_version(self):
        quote = price([line(SODA)])
        assert quote.menu_version == 7
        assert quote.as_dict()["lines"][0] == {
            "item_id": SODA, "name": "Soda", "modifiers": [], "modifier_ids": [],
            "unit_price": 300, "quantity": 1, "line_total": 300, "note": "",
        }  # fmt: skip
