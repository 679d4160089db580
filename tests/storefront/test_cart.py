"""The cart cookie: what it keeps, and what it refuses to grow into."""

from __future__ import annotations

import secrets

import pytest

from nordkestrel.errors import InvalidInput
from orders.pricing import MAX_LINES, CartLine
from storefront import cart as carts


def test_the_same_dish_with_the_same_choices_adds_up():
    cart = carts.Cart(1)
    cart.add(CartLine(7, 1, (2, 3), note="Hot", seen_unit_price=100))
    cart.add(CartLine(7, 2, (3, 2), note="Hot", seen_unit_price=110))
    cart.add(CartLine(7, 1, (2, 3), note="Mild"))
    assert [(line.quantity, line.note) for line in cart.lines] == [(3, "Hot"), (1, "Mild")]
    assert cart.lines[0].seen_unit_price == 110, "the latest price the diner saw"
    with pytest.raises(InvalidInput):
        cart.add(CartLine(7, 97, (2, 3), note="Hot"))
    assert cart.count == 4


def test_every_change_of_lines_is_a_new_checkout():
    cart = carts.Cart(1)
    cart.add(CartLine(7, 1))
    first = cart.token
    cart.replace(list(cart.lines))
    assert cart.token == first, "a refresh that changes nothing keeps the token"
    cart.set_quantity(0, 2)
    assert cart.token != first


def test_a_cart_never_outgrows_its_cookie():
    cart = carts.Cart(1)
    refused = None
    for item_id in range(1, MAX_LINES + 2):
        try:
            cart.add(CartLine(item_id, 1, note=secrets.token_hex(100)))
        except carts.CartFull as error:
            refused = error
            break
    assert refused is not None and "Your cart is full" in refused.detail
    assert len(cart.lines) < MAX_LINES
    kept = list(cart.lines)
    assert len(cart.encode()) <= carts.MAX_COOKIE_VALUE
    with pytest.raises(carts.CartFull):
        cart.add(CartLine(999, 1, note=secrets.token_hex(100)))
    assert cart.lines == kept, "a refused line leaves the cart as it was"


def test_at_most_max_lines():
    cart = carts.Cart(1)
    for item_id in range(1, MAX_LINES + 1):
        cart.add(CartLine(item_id, 1))
    with pytest.raises(carts.CartFull):
        cart.add(CartLine(MAX_LINES + 1, 1))
    assert len(cart.lines) == MAX_LINES


def test_a_cookie_round_trips_only_for_its_restaurant():
    cart = carts.Cart(1, promotion_code="SAVE10")
    cart.add(CartLine(7, 2, (3,), note="x", seen_unit_price=1250))

    class Request:
        COOKIES = {carts.COOKIE_NAME: cart.encode()}

    loaded = carts.load(Request, 1)  # type: ignore[arg-type]
    assert (loaded.lines, loaded.token, loaded.promotion_code, loaded.changed) == (
        cart.lines,
        cart.token,
        "SAVE10",
        False,
    )
    elsewhere = carts.load(Request, 2)  # type: ignore[arg-type]
    assert elsewhere.lines == [] and elsewhere.changed, "the foreign cookie is removed"
