"""Dashboard pages for orders: the kitchen's live queue, the orders list and one order.

Diner contact data is rendered only for roles with ``orders:contact``; the Kitchen role's
HTML never contains it. Status changes and cancellations go through the order services.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from dashboard.base import DashboardView
from nordkestrel.errors import DomainError, PermissionDeniedError
from orders import selectors, services
from orders.models import Fulfilment, Order, OrderLine, Status
from staff.roles import Scope

ORDERS_PAGE_SIZE = 50
# What the one-tap button says for the step it takes.
STEP_LABELS = {
    Status.ACCEPTED: "Accept",
    Status.PREPARING: "Start preparing",
    Status.READY: "Mark ready",
    Status.COMPLETED: "Complete",
}


class SeeOther(HttpResponseRedirect):
    """After a POST, the browser fetches the page again with GET (no resubmission)."""

    status_code = 303


@dataclass(frozen=True)
class Card:
    """One order as the kitchen's queue shows it."""

    order: Order
    lines: list[OrderLine]
    age: str
    promised: str
    late: bool
    new: bool
    next_status: str | None
    next_label: str
    cancellable: bool


def _age(since: datetime, now: datetime) -> str:
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    hours, minutes = divmod(minutes, 60)
    if hours >= 24:
        days, hours = divmod(hours, 24)
        return f"{days} d {hours} h ago" if hours else f"{days} d ago"
    return f"{hours} h {minutes} min ago" if minutes else f"{hours} h ago"


def _clock(moment: datetime, now: datetime, zone: Any) -> str:
    """A time in the restaurant's zone: "12:30" today, "Tue 5 May 12:30" on another day."""
    local = moment.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        return f"{local:%H:%M}"
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def _card(order: Order, now: datetime, zone: Any) -> Card:
    step = selectors.next_step(order)
    return Card(
        order=order,
        lines=list(order.lines.all()),
        age=_age(order.placed_at or order.created_at, now),
        promised=_clock(order.promised_at, now, zone),
        late=selectors.is_late(order, now),
        new=order.status == Status.PLACED,
        next_status=step,
        next_label=STEP_LABELS.get(Status(step), "") if step else "",
        cancellable=selectors.can_be_cancelled(order),
    )


def _get_order(queryset: Any, pk: Any) -> Order:
    try:
        order: Order = queryset.get(pk=int(pk))
    except (Order.DoesNotExist, TypeError, ValueError, OverflowError):
        raise Http404 from None
    return order


def _back(request: HttpRequest, order: Order) -> str:
    """Where a form came from (the queue or the order's page), never another site."""
    target = request.POST.get("next", "")
    if target.startswith("/dashboard/") and url_has_allowed_host_and_scheme(
        target, {request.get_host()}
    ):
        return target
    return reverse("dashboard:order", args=[order.pk])


class _OrderPage(DashboardView):
    abstract = True

    def order_context(self, **extra: Any) -> dict[str, Any]:
        return {
            "zone": self.actor.restaurant.zone,
            "can_contact": self.actor.has(Scope.ORDERS_CONTACT),
            "can_progress": self.actor.has(Scope.ORDERS_PROGRESS),
            "can_cancel": self.actor.has(Scope.ORDERS_CANCEL),
            **extra,
        }


class KitchenView(_OrderPage):
    """The queue of active orders, oldest first; kitchen.js refreshes it every few seconds."""

    template_name = "dashboard/kitchen.html"
    scopes = {"get": Scope.ORDERS_READ}

    def queue_context(self) -> dict[str, Any]:
        now = timezone.now()
        zone = self.actor.restaurant.zone
        cards = [_card(order, now, zone) for order in selectors.kitchen_queue()]
        return self.order_context(cards=cards, updated=f"{now.astimezone(zone):%H:%M:%S}")

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(request, **self.queue_context())


class KitchenQueueView(KitchenView):
    """Just the queue, for kitchen.js to swap in (no navigation, no messages)."""

    template_name = "dashboard/_kitchen_queue.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        context = {"actor": self.actor, "restaurant": self.actor.restaurant}
        response = render(request, self.template_name, {**context, **self.queue_context()})
        response["Cache-Control"] = "no-store"
        return response


class OrderFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        choices=[("", "All"), ("active", "Active (in the kitchen)"), *Status.choices],
    )
    fulfilment = forms.ChoiceField(required=False, choices=[("", "All"), *Fulfilment.choices])
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("date_from", "date_to"):
            day: date | None = data.get(name)
            if day and not selectors.EARLIEST_DAY <= day <= selectors.LATEST_DAY:
                self.add_error(name, "Choose a date between 2000 and 9000.")
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "Must not be before the start date.")
        return data

    def filters(self) -> selectors.OrderFilters:
        data = self.cleaned_data
        status = data.get("status") or ""
        return selectors.OrderFilters(
            statuses=(status,) if status and status != "active" else (),
            active=status == "active",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            fulfilment=data.get("fulfilment") or None,
        )


class OrderListView(_OrderPage):
    """Every order, newest first, filtered by status, fulfilment and date."""

    template_name = "dashboard/orders.html"
    scopes = {"get": Scope.ORDERS_READ}

    def get(self, request: HttpRequest) -> HttpResponse:
        params = request.GET.copy()
        params.pop("page", None)
        form = OrderFilterForm(params or None)
        if form.is_bound and not form.is_valid():
            return self.page(request, status=400, **self.order_context(form=form, page=None))
        filters = form.filters() if form.is_bound else selectors.OrderFilters()
        orders = selectors.order_list(filters, zone=self.actor.restaurant.zone)
        page = Paginator(orders, ORDERS_PAGE_SIZE).get_page(request.GET.get("page"))
        return self.page(
            request, **self.order_context(form=form, page=page, query=params.urlencode())
        )


class OrderDetailView(_OrderPage):
    """One order: lines, totals, history and the actions the role allows."""

    template_name = "dashboard/order.html"
    scopes = {"get": Scope.ORDERS_READ}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        order = _get_order(selectors.order_with_history(Order.objects.all()), pk)
        zone = self.actor.restaurant.zone
        return self.page(
            request,
            **self.order_context(
                order=order,
                card=_card(order, timezone.now(), zone),
                history=list(order.status_changes.all()),
            ),
        )


class OrderStatusView(DashboardView):
    """The one-tap step: POST ``status`` (the status to move to) and ``next``."""

    scopes = {"post": Scope.ORDERS_PROGRESS}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        order = _get_order(Order.objects.all(), pk)
        to_status = request.POST.get("status", "")
        if to_status not in Status.values:
            messages.error(request, "Choose the status to move the order to.")
            return SeeOther(_back(request, order))
        already = order.status == to_status
        try:
            order = services.order_transition(
                actor=self.actor, order_id=order.pk, to_status=to_status
            )
        except PermissionDeniedError as error:
            return self.refuse(request, error.detail)
        except DomainError as error:
            messages.error(request, f"Order #{order.number}: {error.detail}")
        else:
            label = order.get_status_display()
            if already:
                messages.info(request, f"Order #{order.number} is already {label.lower()}.")
            else:
                messages.success(request, f"Order #{order.number}: {label}.")
        return SeeOther(_back(request, order))


class OrderCancelView(DashboardView):
    """Cancel an order with a reason (Managers and up; audited by the service)."""

    scopes = {"post": Scope.ORDERS_CANCEL}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        order = _get_order(Order.objects.all(), pk)
        try:
            order = services.order_cancel(
                actor=self.actor, order_id=order.pk, reason=request.POST.get("reason", "")
            )
        except PermissionDeniedError as error:
            return self.refuse(request, error.detail)
        except DomainError as error:
            messages.error(request, f"Order #{order.number}: {error.detail}")
        else:
            messages.success(request, f"Order #{order.number} was cancelled.")
        return SeeOther(_back(request, order))
