"""The restaurant and its menu, an item's options and the cart."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse

from menus.storefront import LiveMenu, live_menu
from nordkestrel.errors import InvalidInput
from nordkestrel.money import to_major
from nordkestrel.ratelimit import OnOutage, limit
from orders.checkout_request import parse_lines
from orders.placement import quote
from orders.pricing import StaleCart
from storefront.base import StorefrontView, code_problem, day_words, see_other
from tenants.hours import Schedule
from tenants.models import Restaurant

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
