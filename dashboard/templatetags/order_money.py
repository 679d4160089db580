"""The order page's card-payment panel: refunds (with the refund form for roles that may
refund) and disputes, for the roles that handle money."""

from __future__ import annotations

import uuid
from typing import Any

from django import template
from django.conf import settings

from orders.models import Order
from payments.models import Dispute
from payments.money_common import payment_of
from payments.refunds import refund_remaining, refunds_of
from staff.auth import Actor
from staff.roles import Scope

register = template.Library()


@register.inclusion_tag("dashboard/_order_money.html", takes_context=True)
def order_money(context: template.Context, order: Order) -> dict[str, Any]:
    actor = context.get("actor")
    can_refund = isinstance(actor, Actor) and actor.has(Scope.PAYMENTS_REFUND)
    can_disputes = isinstance(actor, Actor) and actor.has(Scope.PAYMENTS_DISPUTES)
    payment = payment_of(order) if can_refund or can_disputes else None
    if payment is None:
        return {"payment": None}
    return {
        "order": order,
        "payment": payment,
        "can_refund": can_refund,
        "remaining": refund_remaining(payment) if can_refund else 0,
        "refunds": refunds_of(order) if can_refund else [],
        "refund_application_fee": settings.REFUND_APPLICATION_FEE,
        # The refund form's operation: sent twice, the form refunds once.
        "operation": uuid.uuid4().hex,
        "disputes": list(Dispute.objects.filter(payment=payment)) if can_disputes else [],
        "csrf_token": context.get("csrf_token"),
    }
