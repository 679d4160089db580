"""Placing an order: the cart priced on the server, the promotion, the slot and the customer
checked, and the order written exactly once per idempotency key.

:func:`place_order` takes a parsed :class:`orders.checkout_request.CheckoutRequest`;
:func:`quote` prices a cart for the checkout form.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from customers.services import customer_for_checkout
from menus.storefront import LiveMenu, live_menu
from nordkestrel import events
from nordkestrel.errors import ConflictError, DomainError, InvalidInput
from nordkestrel.money import to_major
from orders import events as order_events
from orders import payment_methods
from orders.checkout_request import CheckoutRequest
from orders.models import (
    Fulfilment,
    Order,
    OrderLine,
    OrderSequence,
    Status,
    StatusChange,
)
from orders.pricing import CartLine, Charges, Quote, StaleCart, price_cart
from orders.slots import claim_slot, resolve_time
from promotions import rules
from promotions.models import Promotion, Redemption
from promotions.services import promotion_count_use
from tenants.context import (
    TenantMismatch,
    current_restaurant_or_none,
    tenant_context,
)
from tenants.hours import Schedule
from tenants.models import Restaurant

# The largest amount an order's integer columns hold (a cart of the dearest items can exceed it).
MAX_ORDER_AMOUNT = 2**31 - 1


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


def _has_orders(customer_id: int) -> bool:
    """Whether the customer has an order that was not cancelled (a first-order-only code)."""
    return Order.objects.filter(customer_id=customer_id).exclude(status=Status.CANCELLED).exists()


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
    promised, slot = resolve_time(restaurant, schedule, request.scheduled_for, now)
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
        # The customer's history, read under the row lock customer_for_checkout took.
        has_orders = promotion.first_order_only and _has_orders(customer.pk)
        promotion_count_use(promotion=promotion, customer=customer, has_orders=has_orders)
    claim_slot(restaurant, schedule, slot, now)
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
