"""The fuzzing run's own restaurant, with enough data that every id in the schema resolves:
a published menu (categories, items, modifier groups), opening hours, orders placed through
checkout (so customers exist, one with a promotion), promotions, a card payment through the
Stripe stand-in with a dispute, an export, and a webhook endpoint with its delivery log. A
second restaurant with its own orders gives a leak somewhere to go."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orders.checkout_request import parse_checkout
from orders.placement import place_order
from promotions.models import Promotion
from staff.auth import Actor
from staff.models import StaffMember
from staff.roles import Role
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import make_restaurant, make_shop, make_staff, open_all_week
from tests.security.objects import make_object
from tests.support.stripe_server import StripeStandIn

SLUG = "fuzz"


@dataclass(frozen=True)
class FuzzRestaurant:
    restaurant: Restaurant
    owner: StaffMember


def _place_orders(restaurant: Restaurant, shop: dict, now: datetime) -> None:
    carts: list[dict[str, Any]] = [
        {"lines": [{"item_id": shop["fries"], "quantity": 2}], "email": "ada@example.com"},
        {
            "lines": [
                {"item_id": shop["burger"], "quantity": 1,
                 "modifier_ids": [shop["large"], shop["cheese"]], "note": "No onions"},
                {"item_id": shop["soda"], "quantity": 1},
            ],
            "email": "grace@example.com",
            "phone": "+358 40 123 4567",
            "marketing_consent": True,
            "promotion_code": "WELCOME10",
            "tip": 200,
        },
        {"lines": [{"item_id": shop["soda"], "quantity": 3}], "email": "ada@example.com"},
    ]  # fmt: skip
    for number, cart in enumerate(carts, start=1):
        body = {"name": "Diner", **cart}
        with tenant_context(restaurant):
            place_order(
                restaurant=restaurant,
                request=parse_checkout(body, restaurant.zone),
                idempotency_key=f"fuzz-seed-{restaurant.slug}-{number}",
                now=now,
            )


def _take_cards(stand_in: StripeStandIn, restaurant: Restaurant, shop: dict) -> None:
    """A connected Stripe account at the stand-in, a card order paid through it, and a
    dispute of that payment."""
    from django.utils import timezone

    from payments.models import AccountRoute, Dispute, StripeAccount
    from tests.payments.money_support import paid_order

    account_id = f"acct_{restaurant.slug}"
    with tenant_context(restaurant):
        StripeAccount.objects.create(
            account_id=account_id, details_submitted=True, charges_enabled=True,
            payouts_enabled=True,
        )  # fmt: skip
        AccountRoute.objects.create(account_id=account_id, restaurant=restaurant)
    payment = paid_order(stand_in, restaurant, shop, email="card@example.com")
    with tenant_context(restaurant):
        Dispute.objects.create(
            payment=payment, dispute_id=f"dp_{payment.pk}", amount=payment.amount,
            currency=payment.currency, reason="fraudulent", status="needs_response",
            opened_at=timezone.now(),
        )  # fmt: skip


def _seed(stand_in: StripeStandIn, restaurant: Restaurant, now: datetime) -> StaffMember:
    owner = make_staff(restaurant, Role.OWNER)
    for role in (Role.ADMIN, Role.MANAGER, Role.KITCHEN):
        make_staff(restaurant, role)
    open_all_week(restaurant, "00:00", "23:59")
    shop = make_shop(restaurant)
    with tenant_context(restaurant):
        Promotion.objects.create(code="WELCOME10", kind="percent", value=10)
        Promotion.objects.create(
            code="FIVEOFF", kind="fixed", value=500, min_subtotal=1500, max_redemptions=100
        )
    _place_orders(restaurant, shop, now)
    _take_cards(stand_in, restaurant, shop)
    # A webhook endpoint with a failed delivery and its attempt: the delivery log has rows.
    for kind in ("export", "customer", "webhook_delivery"):
        make_object(kind, restaurant)
    # A draft change not yet published, so the preview has something to say.
    from menus import services as menus

    with tenant_context(restaurant):
        menus.menu_save(actor=Actor(member=owner), name="Late night")
    return owner


def seed_fuzz_restaurant(*, stand_in: StripeStandIn, now: datetime) -> FuzzRestaurant:
    ours = make_restaurant(SLUG, name="Fuzz Kitchen")
    _seed(stand_in, make_restaurant(f"{SLUG}-elsewhere"), now)
    return FuzzRestaurant(restaurant=ours, owner=_seed(stand_in, ours, now))
