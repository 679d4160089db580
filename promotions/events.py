"""The promotion events in the catalogue."""

from __future__ import annotations

from nordkestrel import events
from nordkestrel.events import CURRENCY, ID, MINOR_UNITS, PUBLIC_ID, TEXT, TIMESTAMP, obj, timestamp
from promotions.models import Redemption
from staff.roles import Scope

PROMOTION_REDEEMED = events.register(
    events.EventType(
        name="promotion.redeemed",
        version=1,
        scope=Scope.PROMOTIONS_READ,
        schema=obj(
            promotion=obj(id=ID, code=TEXT),
            redemption=obj(id=ID, discount=MINOR_UNITS, currency=CURRENCY, redeemed_at=TIMESTAMP),
            order=obj(id=ID, public_id=PUBLIC_ID),
            customer_id=ID,
        ),
        description="An order was placed with a promotion code (counted against its caps).",
    )
)


def redeemed(redemption: Redemption) -> events.Event:
    order = redemption.order
    return PROMOTION_REDEEMED.new(
        restaurant_id=redemption.restaurant_id,
        occurred_at=redemption.created_at,
        payload={
            "promotion": {"id": redemption.promotion_id, "code": redemption.promotion.code},
            "redemption": {
                "id": redemption.pk,
                "discount": redemption.discount,
                "currency": order.currency,
                "redeemed_at": timestamp(redemption.created_at),
            },
            "order": {"id": order.pk, "public_id": str(order.public_id)},
            "customer_id": redemption.customer_id,
        },
    )
