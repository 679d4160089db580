"""The emails a diner gets about an order, in the restaurant's name."""

from __future__ import annotations

import logging
from email.utils import formataddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from orders.models import Order
from tenants.models import Restaurant

logger = logging.getLogger(__name__)

SUBJECTS = {
    "placed": "Your order #{number} at {restaurant}",
    "ready": "Order #{number} is ready for pickup",
    "cancelled": "Order #{number} was cancelled",
}


def send_order_email_now(*, restaurant: Restaurant, order_id: int, event: str) -> None:
    order = Order.objects.prefetch_related("lines").filter(pk=order_id).first()
    if order is None:
        return
    context = {"restaurant": restaurant, "order": order, "event": event}
    subject = SUBJECTS[event].format(number=order.number, restaurant=restaurant.name)
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"orders/email/{event}.txt", context),
        from_email=formataddr((restaurant.name, settings.ORDER_EMAIL_FROM)),
        to=[order.contact_email],
    )
    message.attach_alternative(render_to_string(f"orders/email/{event}.html", context), "text/html")
    message.send()
