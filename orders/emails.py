"""The emails a diner gets about an order, in the restaurant's name."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from email.headerregistry import Address
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import dateformat, timezone

from customers.consent import consent_token
from nordkestrel import hosts
from nordkestrel.mail import IDEMPOTENCY_ATTRIBUTE
from nordkestrel.money import to_major
from orders.models import Fulfilment, Order, PaymentMethod
from tenants.models import Restaurant

# The mailer (an alias of settings.MAILERS) order emails go through.
MAILER = "default"


def order_email_for(
    *, restaurant: Restaurant, order_id: int, event: str
) -> EmailMultiAlternatives | None:
    """The email for an order event, or None for an order that no longer exists."""
    order = Order.objects.prefetch_related("lines").filter(pk=order_id).first()
    if order is None:
        return None
    return order_email(restaurant=restaurant, order=order, event=event)


def order_email(*, restaurant: Restaurant, order: Order, event: str) -> EmailMultiAlternatives:
    # One line, whatever was typed: a header cannot hold a line break.
    name = " ".join(restaurant.name.split())
    context = _context(restaurant, order, name)
    if event == "placed":
        context["consent_url"] = consent_url(restaurant, order)
    message = EmailMultiAlternatives(
        subject=_subject(order, event, name),
        body=render_to_string(f"orders/email/{event}.txt", context).strip() + "\n",
        # Address keeps a non-ASCII name as text (formataddr would encode it for SMTP, and
        # Resend's API would then show the encoded form).
        from_email=str(Address(display_name=name, addr_spec=settings.ORDER_EMAIL_FROM)),
        to=[order.contact_email],
    )
    message.attach_alternative(render_to_string(f"orders/email/{event}.html", context), "text/html")
    # A retried job sends the same key, and Resend delivers the email once.
    setattr(message, IDEMPOTENCY_ATTRIBUTE, f"order-{order.public_id}-{event}")
    return message


def _subject(order: Order, event: str, restaurant_name: str) -> str:
    prefix = f"Your order #{order.number} at {restaurant_name}"
    if event == "placed":
        return prefix
    if event == "ready":
        if order.fulfilment == Fulfilment.DELIVERY:
            return f"{prefix} is on its way"
        return f"{prefix} is ready for pickup"
    if event == "cancelled":
        return f"{prefix} was cancelled"
    raise ValueError(f"No email for the order event {event!r}.")


def storefront_origin(restaurant: Restaurant) -> str:
    return hosts.storefront_origin(restaurant.slug)


def status_url(restaurant: Restaurant, order: Order) -> str:
    """The diner's status page on the restaurant's storefront host."""
    return f"{storefront_origin(restaurant)}/orders/{order.public_id}"


def consent_url(restaurant: Restaurant, order: Order) -> str:
    """Where the diner confirms the news they asked for at this checkout ("" when this order
    did not ask, or they get news already): ticking the box is a request, not consent."""
    if not order.consent_requested or order.customer.marketing_consent:
        return ""
    return f"{storefront_origin(restaurant)}/news/confirm/{consent_token(order.customer)}"


def _context(restaurant: Restaurant, order: Order, restaurant_name: str) -> dict[str, Any]:
    def money(minor: int) -> str:
        return f"{to_major(minor, order.currency)} {order.currency}"

    promised = timezone.localtime(order.promised_at, restaurant.zone)
    day, time = dateformat.format(promised, "l j F"), dateformat.format(promised, "H:i")
    address = order.delivery_address or {}
    return {
        "restaurant_name": restaurant_name,
        "order": order,
        "pickup": order.fulfilment == Fulfilment.PICKUP,
        "payment": _payment(order),
        # Scheduled orders keep their time; "as soon as possible" is an estimate.
        "when": f"{day} at {time}" if order.scheduled_for else f"{day}, around {time}",
        "delivery_address": _joined(
            address.get("line1"),
            address.get("line2"),
            _joined(address.get("postal_code"), address.get("city"), sep=" "),
        ),
        "lines": [
            {
                "quantity": line.quantity,
                "name": line.name,
                "options": ", ".join(modifier["name"] for modifier in line.modifiers),
                "note": line.note,
                "total": money(line.line_total),
            }
            for line in order.lines.all()
        ],
        "charges": _charges(order, money),
        "total": money(order.total),
        "status_url": status_url(restaurant, order),
        "restaurant_address": _joined(
            restaurant.address_line1,
            restaurant.address_line2,
            _joined(restaurant.postal_code, restaurant.city, sep=" "),
        ),
        "restaurant_phone": restaurant.phone,
    }


def _payment(order: Order) -> str:
    if order.payment_method == PaymentMethod.IN_PERSON:
        return "Pay at pickup" if order.fulfilment == Fulfilment.PICKUP else "Pay on delivery"
    return order.get_payment_method_display()


def _charges(order: Order, money: Callable[[int], str]) -> list[tuple[str, str]]:
    """The receipt's rows between the lines and the total."""
    rows = [("Subtotal", money(order.subtotal))]
    if order.discount:
        code = f" ({order.promotion_code})" if order.promotion_code else ""
        rows.append((f"Discount{code}", f"-{money(order.discount)}"))
    if order.tax or order.tax_rate:
        included = ", incl." if order.prices_include_tax else ""
        rows.append((f"Tax ({_percent(order.tax_rate)}%{included})", money(order.tax)))
    if order.fulfilment == Fulfilment.DELIVERY:
        rows.append(("Delivery", money(order.delivery_fee)))
    if order.tip:
        rows.append(("Tip", money(order.tip)))
    return rows


def _percent(rate: Decimal) -> str:
    return f"{Decimal(rate).normalize():f}"


def _joined(*parts: str | None, sep: str = ", ") -> str:
    return sep.join(part.strip() for part in parts if part and part.strip())
