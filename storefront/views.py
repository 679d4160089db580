"""The diner's pages on a storefront host: the restaurant and its menu, an item's options, the
cart, checkout and the order's status.

Server-rendered and usable without JavaScript. Every amount shown is priced on the server
(``orders.placement.quote``); the cart cookie only says what the diner chose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views import View

from menus.storefront import LiveMenu, live_menu
from nordkestrel.errors import ConflictError, DomainError, InvalidInput
from nordkestrel.money import to_major, to_minor
from nordkestrel.ratelimit import OnOutage, limit
from nordkestrel.text import storable
from orders.checkout_request import parse_checkout, parse_idempotency_key, parse_lines
from orders.models import Fulfilment, Order, Status
from orders.placement import place_order, quote
from orders.pricing import Quote, StaleCart, round_half_up
from orders.slots import SlotFull, checkout_options
from payments.gateway import GatewayError
from payments.services import payment_start
from promotions.rules import MAX_CODE_LENGTH
from storefront import cart as carts
from tenants.context import tenant_context
from tenants.hours import Schedule
from tenants.models import Restaurant
from tenants.selectors import active_restaurant_for_host

logger = logging.getLogger(__name__)

ORDER_STEPS = [
    Status.PLACED,
    Status.ACCEPTED,
    Status.PREPARING,
    Status.READY,
    Status.COMPLETED,
]
FINAL_STATUSES = {Status.COMPLETED, Status.CANCELLED}
TIP_PERCENTS = ("10", "15", "20")
CHECKOUT_FIELDS = {
    "fulfilment", "scheduled_for", "tip", "promotion_code", "name", "email", "phone",
    "address_line1", "address_line2", "address_postal_code", "address_city",
    "delivery_notes", "marketing_consent", "payment_method",
}  # fmt: skip


def see_other(url: str) -> HttpResponseRedirect:
    """After a POST, the browser GETs the next page (a reload never posts again)."""
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def day_words(day: date, today: date) -> str:
    if day == today:
        return "today"
    if day == today + timedelta(days=1):
        return "tomorrow"
    return f"{day:%A} {day.day} {day:%B}"


def page_key(token: str) -> str:
    """The idempotency key of a checkout placed by these pages (cart tokens are random)."""
    return f"page:{token}"


class StorefrontView(View):
    """Base of every page: the host picks the restaurant, the view runs in its tenant context
    and its time zone, and the cart comes from (and goes back to) the cookie."""

    template_name: ClassVar[str] = ""
    cache_control: ClassVar[str] = "private, no-cache"

    restaurant: Restaurant
    now: datetime
    cart: carts.Cart

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        restaurant = active_restaurant_for_host(request.get_host())
        if restaurant is None:
            raise Http404("No restaurant answers on this address.")
        request.restaurant = restaurant  # type: ignore[attr-defined]
        self.restaurant = restaurant
        # The one clock of the request: opening state, slots, pricing and the order agree.
        self.now = timezone.now()
        self.cart = carts.load(request, restaurant.pk)
        with tenant_context(restaurant), timezone.override(restaurant.zone):
            response = super().dispatch(request, *args, **kwargs)
        self.cart.store(response)
        response["Cache-Control"] = self.cache_control
        return response

    def page(
        self, request: HttpRequest, *, status: int = 200, template: str = "", **context: Any
    ) -> HttpResponse:
        base = {"restaurant": self.restaurant, "cart": self.cart, "currency": self.currency}
        return render(request, template or self.template_name, {**base, **context}, status=status)

    @property
    def currency(self) -> str:
        return self.restaurant.currency

    def today(self) -> date:
        return self.now.astimezone(self.restaurant.zone).date()

    def price(
        self,
        *,
        fulfilment: str = Fulfilment.PICKUP,
        tip: int = 0,
        promotion_code: str | None = None,
    ) -> Priced:
        """The cart priced now. A line that changed is refreshed in the cart (and the cookie);
        a stored code that stopped applying is dropped, saying why."""
        if not self.cart.lines:
            return Priced()
        code = self.cart.promotion_code if promotion_code is None else promotion_code
        priced = Priced()
        try:
            try:
                result = quote(
                    self.restaurant, self.cart.lines, fulfilment=fulfilment, tip=tip,
                    promotion_code=code, now=self.now,
                )  # fmt: skip
            except InvalidInput as error:
                priced.code_error = error.detail
                result = quote(
                    self.restaurant, self.cart.lines, fulfilment=fulfilment, tip=tip,
                    now=self.now,
                )  # fmt: skip
        except StaleCart as stale:
            # Nothing published: say so, and keep the cart for when the menu is back.
            priced.unavailable = stale.detail
            return priced
        if result.problems:
            priced.changes = [problem["detail"] for problem in result.problems]
            self.cart.replace([line.as_cart_line() for line in result.lines])
        priced.quote = result
        return priced

    def refresh_from(self, stale: StaleCart) -> list[str]:
        """What a refused checkout says changed; the cart takes the refreshed lines."""
        if any(problem.get("code") == "menu_unavailable" for problem in stale.problems):
            return [stale.detail]
        if any(problem.get("line") is not None for problem in stale.problems):
            self.cart.replace([line.as_cart_line() for line in stale.quote.lines])
            return [problem["detail"] for problem in stale.problems]
        return [stale.detail]


@dataclass
class Priced:
    quote: Quote | None = None
    changes: list[str] = field(default_factory=list)
    unavailable: str = ""
    code_error: str = ""


# --- The restaurant and its menu ----------------------------------------------------------


def opening_state(restaurant: Restaurant, now: datetime, today: date) -> dict[str, Any]:
    schedule = Schedule.load(restaurant, now=now)
    period = schedule.open_period_at(now)
    if period is not None:
        return {"open": True, "closes_at": period[1].astimezone(restaurant.zone)}
    opening = schedule.next_opening(now)
    return {
        "open": False,
        "next_opening": opening,
        "next_opening_day": day_words(opening.date(), today) if opening else "",
    }


def _orderable(menu: LiveMenu, item: dict[str, Any]) -> bool:
    """Not sold out, and every required choice still has enough options left."""
    if item["id"] in menu.sold_out_items:
        return False
    for group_id in item["modifier_groups"]:
        group = menu.document["modifier_groups"].get(str(group_id))
        if group is None:
            continue
        needed = max(group["min"], 1 if group["required"] else 0)
        left = [m for m in group["modifiers"] if m["id"] not in menu.sold_out_modifiers]
        if len(left) < needed:
            return False
    return True


def menu_sections(menu: LiveMenu, now: datetime) -> list[dict[str, Any]]:
    items = menu.document["items"]
    sections = []
    for shown in menu.menus_available_at(now):
        categories = []
        for category in shown["categories"]:
            entries = []
            for item_id in category["items"]:
                item = items.get(str(item_id))
                if item is None:
                    continue
                entries.append(
                    {
                        **item,
                        "orderable": _orderable(menu, item),
                        "has_options": bool(item["modifier_groups"]),
                    }
                )
            if entries:
                categories.append({**category, "entries": entries})
        if categories:
            sections.append({**shown, "categories": categories})
    return sections


class HomeView(StorefrontView):
    template_name = "storefront/home.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        menu = live_menu(self.restaurant.pk)
        return self.page(
            request,
            state=opening_state(self.restaurant, self.now, self.today()),
            taking_orders=menu is not None,
            sections=menu_sections(menu, self.now) if menu is not None else [],
        )


# --- An item and its options --------------------------------------------------------------


def rule_words(minimum: int, maximum: int) -> str:
    if minimum and minimum == maximum:
        return f"Required: choose {minimum}."
    if minimum:
        return f"Required: choose {minimum} to {maximum}."
    if maximum == 1:
        return "Optional: choose up to 1."
    return f"Optional: choose up to {maximum}."


def item_groups(
    menu: LiveMenu, item: dict[str, Any], chosen: set[str], problem: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], str]:
    """The item's option groups as the form shows them, and the problem's text when it
    belongs to no single group."""
    groups = []
    misplaced = problem["detail"] if problem else ""
    for group_id in item["modifier_groups"]:
        group = menu.document["modifier_groups"].get(str(group_id))
        if group is None:
            continue
        minimum = max(group["min"], 1 if group["required"] else 0)
        options = [
            {
                **modifier,
                "sold_out": modifier["id"] in menu.sold_out_modifiers,
                "checked": str(modifier["id"]) in chosen,
            }
            for modifier in group["modifiers"]
        ]
        picked = [option for option in options if option["checked"]]
        broken = not minimum <= len(picked) <= group["max"] or any(o["sold_out"] for o in picked)
        error = ""
        if misplaced and broken:
            error, misplaced = misplaced, ""
        groups.append(
            {
                "id": group["id"],
                "name": group["name"],
                "single": group["max"] == 1,
                "required": minimum > 0,
                "rule": rule_words(minimum, group["max"]),
                "options": options,
                "picked": bool(picked),
                "error": error,
            }
        )
    return groups, misplaced


def _item_field(attr: str | None) -> str:
    for name in ("quantity", "note"):
        if attr and attr.endswith("." + name):
            return name
    return "form"


class ItemView(StorefrontView):
    template_name = "storefront/item.html"

    def _find(self, item_id: int) -> tuple[LiveMenu, dict[str, Any]]:
        menu = live_menu(self.restaurant.pk)
        if menu is None:
            raise Http404("Nothing is on the menu.")
        item = menu.document["items"].get(str(item_id))
        if item is None or item_id not in menu.items_available_at(self.now):
            raise Http404("That dish is not on the menu now.")
        return menu, item

    def _form(
        self,
        request: HttpRequest,
        menu: LiveMenu,
        item: dict[str, Any],
        *,
        values: dict[str, Any],
        errors: dict[str, str],
        problem: dict[str, Any] | None = None,
        status: int = 200,
    ) -> HttpResponse:
        groups, misplaced = item_groups(menu, item, values["chosen"], problem)
        if misplaced:
            errors = {**errors, "form": misplaced}
        return self.page(
            request,
            status=status,
            item=item,
            orderable=_orderable(menu, item),
            groups=groups,
            values=values,
            errors=errors,
        )

    def get(self, request: HttpRequest, item_id: int) -> HttpResponse:
        menu, item = self._find(item_id)
        values = {"quantity": "1", "note": "", "chosen": set()}
        return self._form(request, menu, item, values=values, errors={})

    def post(self, request: HttpRequest, item_id: int) -> HttpResponse:
        menu, item = self._find(item_id)
        chosen = [
            value
            for group_id in item["modifier_groups"]
            for value in request.POST.getlist(f"group-{group_id}")
            if value
        ]
        values = {
            "quantity": request.POST.get("quantity", "1"),
            "note": request.POST.get("note", ""),
            "chosen": set(chosen),
        }
        try:
            lines = parse_lines(
                [
                    {
                        "item_id": item_id,
                        "quantity": values["quantity"],
                        "modifier_ids": chosen,
                        "note": values["note"],
                    }
                ]
            )
        except InvalidInput as error:
            field_name = _item_field(error.attr)
            detail = error.detail if field_name != "form" else "Choose from the options shown."
            return self._form(
                request, menu, item, values=values, errors={field_name: detail}, status=400
            )
        try:
            priced = quote(self.restaurant, lines, now=self.now)
        except StaleCart as stale:
            return self._form(
                request, menu, item, values=values, errors={"form": stale.detail}, status=409
            )
        if priced.problems:
            return self._form(
                request, menu, item, values=values, errors={}, problem=priced.problems[0],
                status=400,
            )  # fmt: skip
        line = priced.lines[0]
        try:
            self.cart.add(line.as_cart_line())
        except InvalidInput as error:
            return self._form(
                request, menu, item, values=values, errors={"quantity": error.detail}, status=400
            )
        messages.success(request, f"Added {line.quantity} × {line.name} to your cart.")  # noqa: RUF001
        return see_other(reverse("storefront:cart"))


# --- The cart -----------------------------------------------------------------------------


class CartView(StorefrontView):
    template_name = "storefront/cart.html"
    cache_control = "private, no-store"

    def _page(
        self, request: HttpRequest, *, errors: dict[str, str] | None = None, status: int = 200
    ) -> HttpResponse:
        priced = self.price()
        notices = []
        if priced.code_error:
            notices.append(
                f"The code {self.cart.promotion_code} no longer applies: {priced.code_error}"
            )
            self.cart.set_code("")
        return self.page(
            request,
            status=status,
            priced=priced,
            notices=notices,
            errors=errors or {},
            code_value=request.POST.get("promotion_code", "") if request.method == "POST" else "",
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._page(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        action = request.POST.get("action", "")
        if action == "apply_code":
            return self._apply_code(request)
        if action == "remove_code":
            self.cart.set_code("")
            messages.info(request, "The promotion code was removed.")
            return see_other(reverse("storefront:cart"))
        if action in ("quantity", "remove"):
            return self._change_line(request, action)
        return self._page(request, errors={"form": "Choose what to change."}, status=400)

    def _change_line(self, request: HttpRequest, action: str) -> HttpResponse:
        try:
            index = int(request.POST.get("line", ""))
            quantity = 0 if action == "remove" else int(request.POST.get("quantity", ""))
        except ValueError:
            return self._page(request, errors={"form": "Enter a whole number."}, status=400)
        if not 0 <= index < len(self.cart.lines):
            messages.info(request, "That line is no longer in your cart.")
            return see_other(reverse("storefront:cart"))
        if not 0 <= quantity <= 99:
            return self._page(
                request, errors={"form": "Choose a quantity from 0 to 99."}, status=400
            )
        self.cart.set_quantity(index, quantity)
        return see_other(reverse("storefront:cart"))

    def _apply_code(self, request: HttpRequest) -> HttpResponse:
        # Guessing codes costs a request each, per client address.
        limit(
            request,
            group="promotion-redeem",
            rate=settings.PROMOTION_REDEEM_RATE,
            on_outage=OnOutage.ALLOW,
        )
        code = request.POST.get("promotion_code", "").strip()
        problem = code_problem(code) if code else "Enter a code."
        if problem:
            return self._page(request, errors={"promotion_code": problem}, status=400)
        if not self.cart.lines:
            return self._page(
                request, errors={"promotion_code": "Add something to your cart first."}, status=400
            )
        try:
            result = quote(self.restaurant, self.cart.lines, promotion_code=code, now=self.now)
        except InvalidInput as error:
            return self._page(request, errors={"promotion_code": error.detail}, status=400)
        except StaleCart as stale:
            return self._page(request, errors={"form": stale.detail}, status=409)
        self.cart.set_code(result.promotion_code)
        messages.success(
            request,
            f"Code {result.promotion_code} applied: "
            f"{to_major(result.discount, result.currency)} {result.currency} off.",
        )
        return see_other(reverse("storefront:cart"))


# --- Checkout -----------------------------------------------------------------------------


def code_problem(code: str) -> str:
    """Why a typed promotion code cannot even be looked up ("" when it can)."""
    if len(code) > MAX_CODE_LENGTH or not storable(code):
        return "That promotion code is not valid."
    return ""


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
        """The form as the body ``parse_checkout`` reads (the API's shape)."""
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
            order, _created = place_order(
                restaurant=self.restaurant,
                request=parse_checkout(form.body(self.cart, tip), self.restaurant.zone),
                idempotency_key=page_key(self.cart.token),
                now=self.now,
            )
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


# --- The order's status -------------------------------------------------------------------


def order_steps(status: str) -> list[dict[str, Any]]:
    reached = ORDER_STEPS.index(Status(status)) if status in ORDER_STEPS else -1
    return [
        {
            "status": str(step),
            "label": step.label,
            "state": "done" if index < reached else "current" if index == reached else "todo",
        }
        for index, step in enumerate(ORDER_STEPS)
    ]


class OrderView(StorefrontView):
    template_name = "storefront/order.html"
    cache_control = "private, no-store"

    def get(self, request: HttpRequest, public_id: Any) -> HttpResponse:
        order = Order.objects.filter(public_id=public_id).prefetch_related("lines").first()
        if order is None:
            raise Http404("No such order.")
        return self.page(
            request,
            order=order,
            steps=order_steps(order.status),
            final=order.status in FINAL_STATUSES,
            promised_day=day_words(
                order.promised_at.astimezone(self.restaurant.zone).date(), self.today()
            ),
            status_url=f"/api/v1/storefront/orders/{order.public_id}",
        )
