"""What every diner's page shares: the host picks the restaurant, the page runs in its tenant
context and time zone, and the cart comes from (and goes back to) the cookie.

The pages are server-rendered and usable without JavaScript. Every amount shown is priced on
the server (``orders.placement.quote``); the cart cookie only says what the diner chose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views import View

from nordkestrel.errors import InvalidInput
from nordkestrel.text import storable
from orders.models import Fulfilment
from orders.placement import quote
from orders.pricing import Quote, StaleCart
from promotions.rules import MAX_CODE_LENGTH
from storefront import cart as carts
from tenants.context import tenant_context
from tenants.models import Restaurant
from tenants.selectors import active_restaurant_for_host


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


def code_problem(code: str) -> str:
    """Why a typed promotion code cannot even be looked up ("" when it can)."""
    if len(code) > MAX_CODE_LENGTH or not storable(code):
        return "That promotion code is not valid."
    return ""
