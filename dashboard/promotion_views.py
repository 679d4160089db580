"""Dashboard pages for promotion codes: the list with a form to add one, and one code's page
(its settings and the orders that used it). Codes are retired by unticking "Active"."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from dashboard.base import DashboardView
from nordkestrel.errors import DomainError
from nordkestrel.money import to_major, to_minor
from promotions import services
from promotions.models import Promotion, Redemption
from staff.auth import Actor
from staff.roles import Scope

PROMOTIONS_PAGE = 50
REDEMPTIONS_PAGE = 50
STATUS_LABELS = {
    services.PromotionStatus.SCHEDULED: "Scheduled",
    services.PromotionStatus.ACTIVE: "Active",
    services.PromotionStatus.EXPIRED: "Expired",
    services.PromotionStatus.USED_UP: "Used up",
    services.PromotionStatus.INACTIVE: "Inactive",
}


class LocalDateTimeField(forms.DateTimeField):
    """A ``datetime-local`` input read and shown in the restaurant's time zone."""

    def __init__(self, zone: ZoneInfo, **kwargs: Any) -> None:
        self.zone = zone
        kwargs.setdefault("widget", forms.DateTimeInput(attrs={"type": "datetime-local"}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> datetime | None:
        # Django reads a naive time in the active zone, refusing one that the clocks skip.
        with timezone.override(self.zone):
            return super().to_python(value)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, datetime) and timezone.is_aware(value):
            local = value.astimezone(self.zone).replace(tzinfo=None)
            return local.isoformat(timespec="seconds" if local.second else "minutes")
        return value


class PromotionForm(forms.Form):
    code = forms.CharField(
        max_length=100,
        help_text="3-32 letters, digits, '-' or '_'. Diners may type it in any case.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    description = forms.CharField(max_length=1000, required=False)
    kind = forms.ChoiceField(choices=Promotion.Kind.choices)

    def __init__(self, *args: Any, currency: str, zone: ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.fields["value"] = forms.CharField(
            max_length=20,
            label="Discount",
            help_text=f"Percent off (e.g. 10), or an amount in {currency} (e.g. 5.00).",
        )
        self.fields["min_subtotal"] = forms.CharField(
            max_length=20, required=False, label=f"Minimum order ({currency})"
        )
        self.fields["starts_at"] = LocalDateTimeField(
            zone, required=False, label="Starts", help_text=f"Local time ({zone.key})."
        )
        self.fields["ends_at"] = LocalDateTimeField(
            zone, required=False, label="Ends", help_text=f"Local time ({zone.key})."
        )
        self.fields["max_redemptions"] = forms.IntegerField(
            required=False, label="Total uses", help_text="Empty for no limit."
        )
        self.fields["per_customer_limit"] = forms.IntegerField(
            required=False, label="Uses per customer", help_text="Empty for no limit."
        )
        self.fields["first_order_only"] = forms.BooleanField(
            required=False, label="First order only"
        )
        self.fields["active"] = forms.BooleanField(required=False, label="Active")
        # The browser holds typing to the service's limits; longer input still gets its message.
        self.fields["code"].widget.attrs["maxlength"] = 32
        self.fields["description"].widget.attrs["maxlength"] = services.MAX_DESCRIPTION
        for name in ("starts_at", "ends_at"):
            value = self.initial.get(name)
            if isinstance(value, datetime) and value.second:
                self.fields[name].widget.attrs["step"] = 1

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, value = data.get("kind"), data.get("value")
        if kind and value is not None:
            try:
                if kind == Promotion.Kind.PERCENT:
                    text = value.strip()
                    if not (text.isascii() and text.isdigit() and len(text) <= 9):
                        raise ValueError("Use a whole number of percent, e.g. 10.")
                    data["value"] = int(text)
                else:
                    data["value"] = to_minor(value, self.currency)
            except ValueError as error:
                self.add_error("value", str(error))
        if "min_subtotal" in data:
            try:
                data["min_subtotal"] = to_minor(data["min_subtotal"] or "0", self.currency)
            except ValueError as error:
                self.add_error("min_subtotal", str(error))
        return data

    @classmethod
    def initial_for(cls, promotion: Promotion, currency: str) -> dict[str, Any]:
        value = (
            str(promotion.value)
            if promotion.kind == Promotion.Kind.PERCENT
            else to_major(promotion.value, currency)
        )
        return {
            **{field: getattr(promotion, field) for field in services.EDITABLE},
            "value": value,
            "min_subtotal": to_major(promotion.min_subtotal, currency),
        }


def newest_first(queryset: Any, request: HttpRequest, size: int) -> tuple[list[Any], str | None]:
    """One page of rows, newest first, from ``?before=<id>``; and the link to older ones."""
    before = request.GET.get("before", "")
    if before.isascii() and before.isdigit() and len(before) <= 18:
        queryset = queryset.filter(pk__lt=int(before))
    rows = list(queryset.order_by("-id")[: size + 1])
    if len(rows) <= size:
        return rows, None
    return rows[:size], f"?before={rows[size - 1].pk}"


def discount_text(promotion: Promotion, currency: str) -> str:
    if promotion.kind == Promotion.Kind.PERCENT:
        return f"{promotion.value} %"
    return f"{to_major(promotion.value, currency)} {currency}"


def uses_text(promotion: Promotion) -> str:
    if promotion.max_redemptions is None:
        return str(promotion.redemption_count)
    return f"{promotion.redemption_count} / {promotion.max_redemptions}"


class PromotionPageMixin:
    actor: Actor

    def form(self, data: Any = None, initial: dict[str, Any] | None = None) -> PromotionForm:
        restaurant = self.actor.restaurant
        return PromotionForm(
            data, initial=initial, currency=restaurant.currency, zone=restaurant.zone
        )

    @staticmethod
    def show_error(form: PromotionForm, error: DomainError) -> None:
        form.add_error(error.attr if error.attr in form.fields else None, error.detail)


class PromotionsView(PromotionPageMixin, DashboardView):
    template_name = "dashboard/promotions.html"
    scopes = {"get": Scope.PROMOTIONS_WRITE, "post": Scope.PROMOTIONS_WRITE}

    def _page(self, request: HttpRequest, form: PromotionForm, status: int = 200) -> HttpResponse:
        now = timezone.now()
        currency = self.actor.restaurant.currency
        promotions, older = newest_first(Promotion.objects.all(), request, PROMOTIONS_PAGE)
        rows = [
            (
                promotion,
                STATUS_LABELS[services.promotion_status(promotion, now)],
                discount_text(promotion, currency),
                uses_text(promotion),
            )
            for promotion in promotions
        ]
        return self.page(request, status=status, form=form, rows=rows, older=older)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._page(request, self.form(initial={"active": True, "min_subtotal": ""}))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = self.form(request.POST)
        if not form.is_valid():
            return self._page(request, form, status=400)
        try:
            promotion = services.promotion_create(actor=self.actor, **form.cleaned_data)
        except DomainError as error:
            self.show_error(form, error)
            return self._page(request, form, status=400)
        messages.success(request, f"Created {promotion.code}.")
        return HttpResponseRedirect(reverse("dashboard:promotion", args=[promotion.pk]))


class PromotionView(PromotionPageMixin, DashboardView):
    template_name = "dashboard/promotion.html"
    scopes = {"get": Scope.PROMOTIONS_WRITE, "post": Scope.PROMOTIONS_WRITE}

    def _promotion(self, pk: int) -> Promotion:
        promotion = Promotion.objects.filter(pk=pk).first()
        if promotion is None:
            raise Http404
        return promotion

    def _form(self, promotion: Promotion, data: Any = None) -> PromotionForm:
        currency = self.actor.restaurant.currency
        form = self.form(data, initial=PromotionForm.initial_for(promotion, currency))
        if Redemption.objects.filter(promotion_id=promotion.pk).exists():
            # Orders name the code they used: once redeemed, it keeps its spelling.
            form.fields["code"].disabled = True
            form.fields["code"].help_text = "Used by orders, so it cannot be renamed."
        return form

    def _page(
        self, request: HttpRequest, promotion: Promotion, form: PromotionForm, status: int = 200
    ) -> HttpResponse:
        page, older = newest_first(
            Redemption.objects.filter(promotion_id=promotion.pk).select_related(
                "order", "customer"
            ),
            request,
            REDEMPTIONS_PAGE,
        )
        currency = self.actor.restaurant.currency
        return self.page(
            request,
            status=status,
            promotion=promotion,
            status_label=STATUS_LABELS[services.promotion_status(promotion)],
            discount=discount_text(promotion, currency),
            uses=uses_text(promotion),
            form=form,
            redemptions=page,
            older=older,
            currency=currency,
            zone=self.actor.restaurant.zone,
        )

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        promotion = self._promotion(pk)
        return self._page(request, promotion, self._form(promotion))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        promotion = self._promotion(pk)
        form = self._form(promotion, request.POST)
        if not form.is_valid():
            return self._page(request, promotion, form, status=400)
        try:
            promotion = services.promotion_update(
                actor=self.actor, promotion=promotion, **form.cleaned_data
            )
        except DomainError as error:
            self.show_error(form, error)
            return self._page(request, self._promotion(pk), form, status=400)
        messages.success(request, f"Saved {promotion.code}.")
        return HttpResponseRedirect(reverse("dashboard:promotion", args=[promotion.pk]))
