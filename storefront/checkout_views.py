"""Checkout: the form, its tip and times, and placing the order."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from rest_framework import serializers

from nordkestrel.api import error_leaves
from nordkestrel.errors import ConflictError, DomainError, InvalidInput
from nordkestrel.money import to_minor
from nordkestrel.ratelimit import OnOutage, limit
from nordkestrel.serializers import validated
from orders.checkout_request import parse_idempotency_key
from orders.models import Fulfilment, Order, Status
from orders.placement import place_order
from orders.pricing import StaleCart, round_half_up
from orders.slots import SlotFull, checkout_options
from payments.gateway import GatewayError
from payments.services import payment_start
from storefront import cart as carts
from storefront.base import StorefrontView, code_problem, day_words, page_key, see_other
from storefront.checkout_input import PARSED, CheckoutRequestSerializer

logger = logging.getLogger(__name__)

TIP_PERCENTS = ("10", "15", "20")
CHECKOUT_FIELDS = {
    "fulfilment", "scheduled_for", "tip", "promotion_code", "name", "email", "phone",
    "address_line1", "address_line2", "address_postal_code", "address_city",
    "delivery_notes", "marketing_consent", "payment_method",
}  # fmt: skip


def checkout_field(attr: str | None) -> str:
    """The form field a checkout error belongs to ("form" for the page as a whole)."""
    name = (attr or "").replace(".", "_")
    return name if name in CHECKOUT_FIELDS else "form"


def tip_amount(choice: str, custom: str, subtotal: int, currency: str) -> int:
    if choice in ("", "0"):
        return 0
    if choice in TIP_PERCENTS:
        return round_half_up(Decimal(subtotal) * Decimal(choice) / 100)
    if choice == "custom":
        try:
            return to_minor(custom or "0", currency)
        except ValueError as error:
            detail = f"Enter the tip as an amount, e.g. 2.50. {error}"
            raise InvalidInput(detail, attr="tip") from None
    raise InvalidInput("Choose a tip.", attr="tip")


def time_groups(times: list[datetime], zone: Any, today: date) -> list[dict[str, Any]]:
    """Offered times by day, as the select's option groups, in the restaurant's time zone."""
    groups: list[dict[str, Any]] = []
    for moment in times:
        local = moment.astimezone(zone)
        words = day_words(local.date(), today)
        label = words[0].upper() + words[1:]
        if not groups or groups[-1]["label"] != label:
            groups.append({"label": label, "times": []})
        groups[-1]["times"].append(
            {"value": local.isoformat(timespec="minutes"), "label": f"{local:%H:%M}"}
        )
    return groups


@dataclass
class CheckoutForm:
    values: dict[str, str]

    @classmethod
    def posted(cls, request: HttpRequest) -> CheckoutForm:
        names = CHECKOUT_FIELDS | {"tip_custom", "expected_total", "checkout_token"}
        return cls({name: request.POST.get(name, "").strip() for name in names})

    def body(self, cart: carts.Cart, tip: int) -> dict[str, Any]:
        """The form as the body the checkout's serializer reads (the API's shape)."""
        v = self.values
        return {
            "lines": [line.as_dict() for line in cart.lines],
            "fulfilment": v["fulfilment"],
            "scheduled_for": v["scheduled_for"],
            "name": v["name"],
            "email": v["email"],
            "phone": v["phone"],
            "address": {
                "line1": v["address_line1"],
                "line2": v["address_line2"],
                "postal_code": v["address_postal_code"],
                "city": v["address_city"],
            },
            "delivery_notes": v["delivery_notes"],
            "tip": tip,
            "promotion_code": v["promotion_code"],
            "marketing_consent": v["marketing_consent"],
            "payment_method": v["payment_method"],
            "expected_total": v["expected_total"],
        }


class CheckoutView(StorefrontView):
    template_name = "storefront/checkout.html"
    cache_control = "private, no-store"

    def _fulfilment(self, posted: str) -> str:
        enabled = [
            value
            for value, on in (
                (Fulfilment.PICKUP, self.restaurant.pickup_enabled),
                (Fulfilment.DELIVERY, self.restaurant.delivery_enabled),
            )
            if on
        ]
        if posted in enabled:
            return posted
        return str(enabled[0]) if enabled else str(Fulfilment.PICKUP)

    def _page(
        self,
        request: HttpRequest,
        form: CheckoutForm,
        *,
        errors: dict[str, str] | None = None,
        changes: list[str] | None = None,
        status: int = 200,
    ) -> HttpResponse:
        errors = dict(errors or {})
        values = form.values
        fulfilment = self._fulfilment(values["fulfilment"])
        code = values["promotion_code"]
        if code_problem(code):
            errors.setdefault("promotion_code", code_problem(code))
            code = ""
        priced = self.price(fulfilment=fulfilment, promotion_code=code)
        if priced.code_error:
            errors.setdefault("promotion_code", priced.code_error)
            if code == self.cart.promotion_code:
                self.cart.set_code("")  # applied on the cart page, it no longer applies
        summary = priced.quote
        tips: list[dict[str, Any]] = []
        if summary is not None:
            tips = [
                {
                    "value": percent,
                    "amount": tip_amount(percent, "", summary.subtotal, self.currency),
                }
                for percent in TIP_PERCENTS
            ]
            try:
                tip = tip_amount(
                    values["tip"], values["tip_custom"], summary.subtotal, self.currency
                )
            except InvalidInput as error:
                errors.setdefault("tip", error.detail)
                tip = 0
            if tip:
                summary = self.price(
                    fulfilment=fulfilment, tip=tip, promotion_code="" if priced.code_error else code
                ).quote
        options = checkout_options(self.restaurant, now=self.now)
        return self.page(
            request,
            status=400 if errors and status == 200 else status,
            summary=summary,
            changes=(changes or []) + priced.changes,
            unavailable=priced.unavailable,
            errors=errors,
            values={**values, "fulfilment": fulfilment},
            tips=tips,
            options=options,
            time_groups=time_groups(options.times, self.restaurant.zone, self.today()),
            goods_total=(summary.total - summary.tip - summary.delivery_fee) if summary else 0,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        if not self.cart.lines:
            return HttpResponseRedirect(reverse("storefront:cart"))
        form = CheckoutForm(dict.fromkeys(CHECKOUT_FIELDS | {"tip_custom", "expected_total"}, ""))
        form.values.update(tip="0", promotion_code=self.cart.promotion_code)
        return self._page(request, form)

    def post(self, request: HttpRequest) -> HttpResponse:
        limit(request, group="checkout", rate=settings.CHECKOUT_RATE, on_outage=OnOutage.ALLOW)
        form = CheckoutForm.posted(request)
        if form.values["promotion_code"]:
            limit(
                request,
                group="promotion-redeem",
                rate=settings.PROMOTION_REDEEM_RATE,
                on_outage=OnOutage.ALLOW,
            )
        token = form.values["checkout_token"]
        if not self.cart.lines:
            # Sent again after the order went through (the cart is gone): show that order.
            placed = self._order_for_token(token)
            if placed is not None:
                return see_other(reverse("storefront:order", args=[placed]))
            messages.info(request, "Your cart is empty.")
            return see_other(reverse("storefront:cart"))
        if token != self.cart.token:
            detail = "Your cart changed since this page was opened. Check it and order again."
            return self._page(request, form, errors={"form": detail}, status=409)
        if request.POST.get("action") == "update":
            return self._page(request, form)
        return self._place(request, form)

    def _order_for_token(self, token: str) -> Any:
        try:
            key = parse_idempotency_key(token)
        except InvalidInput:
            return None
        if key is None:
            return None
        # Only a key this page minted: an API client's keys are theirs to choose (and guess).
        return (
            Order.objects.filter(idempotency_key=page_key(key))
            .values_list("public_id", flat=True)
            .first()
        )

    def _place(self, request: HttpRequest, form: CheckoutForm) -> HttpResponse:
        values = form.values
        # The subtotal that percentage tips are taken from; what the diner saw is checked too.
        priced = self.price(promotion_code="")
        if priced.quote is None or priced.changes:
            changes = priced.changes or [priced.unavailable]
            return self._page(request, form, changes=changes, status=409)
        try:
            tip = tip_amount(
                values["tip"], values["tip_custom"], priced.quote.subtotal, self.currency
            )
            body = validated(
                CheckoutRequestSerializer, form.body(self.cart, tip), zone=self.restaurant.zone
            )
            order, _created = place_order(
                restaurant=self.restaurant,
                request=body[PARSED],
                idempotency_key=page_key(self.cart.token),
                now=self.now,
            )
        except serializers.ValidationError as refused:
            # Every field's first problem at once, as the API lists them.
            errors: dict[str, str] = {}
            for attr, detail in error_leaves(refused.detail):
                errors.setdefault(checkout_field(attr), str(detail))
            return self._page(request, form, errors=errors, status=400)
        except StaleCart as stale:
            return self._page(request, form, changes=self.refresh_from(stale), status=409)
        except SlotFull as full:
            return self._page(
                request, form, errors={"scheduled_for": full.detail}, status=full.status
            )
        except ConflictError as conflict:
            if conflict.code == "idempotency_key_reused":
                placed = self._order_for_token(self.cart.token)
                if placed is not None:
                    # This cart was ordered already (the reply was lost, then the form changed).
                    self.cart.clear()
                    return see_other(reverse("storefront:order", args=[placed]))
            return self._page(
                request, form, errors={checkout_field(conflict.attr): conflict.detail},
                status=conflict.status,
            )  # fmt: skip
        except DomainError as error:
            return self._page(
                request, form, errors={checkout_field(error.attr): error.detail},
                status=error.status,
            )  # fmt: skip
        self.cart.clear()
        if order.status == Status.PENDING_PAYMENT:
            # Paid by card: the PaymentIntent now that the order is committed, then Stripe's
            # form. If Stripe cannot be reached, the payment page says so and offers a retry.
            try:
                payment_start(order=order)
            except (GatewayError, ConflictError):
                logger.warning("No PaymentIntent yet for order %s", order.pk, exc_info=True)
            return see_other(reverse("storefront:pay", args=[order.public_id]))
        return see_other(reverse("storefront:order", args=[order.public_id]))
