"""Dashboard pages for customers: the searchable list and one customer with their orders."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse

from customers import selectors
from customers.models import Customer
from dashboard.base import DashboardView
from orders.selectors import customer_recent_orders
from staff.roles import Scope

PAGE_SIZE = 50
# How the consent's source reads after "Yes, since <date>, ".
CONSENT_SOURCES: dict[str, str] = {
    Customer.ConsentSource.CHECKOUT.value: "at checkout, confirmed by email"
}


class CustomerSearchForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=selectors.MAX_SEARCH_LENGTH,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Email, name or phone"}),
    )
    marketing_consent = forms.ChoiceField(
        label="Marketing consent",
        required=False,
        choices=[("", "Anyone"), ("true", "Consented"), ("false", "Not consented")],
    )
    cursor = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def clean_cursor(self) -> selectors.Cursor | None:
        text = self.cleaned_data.get("cursor")
        if not text:
            return None
        try:
            return selectors.Cursor.decode(text)
        except selectors.InvalidCursor as error:
            raise forms.ValidationError(str(error)) from None


def consent_text(customer: Customer, zone: Any) -> str:
    if not customer.marketing_consent:
        if customer.consent_requested_at:
            # Asked at checkout, not yet confirmed from the order email: no consent.
            asked = customer.consent_requested_at.astimezone(zone)
            return f"No (asked {asked:%Y-%m-%d}, not confirmed by email)"
        return "No"
    parts = ["Yes"]
    if customer.consent_at:
        parts.append(f"since {customer.consent_at.astimezone(zone):%Y-%m-%d}")
    source = CONSENT_SOURCES.get(customer.consent_source)
    if source:
        parts.append(source)
    return ", ".join(parts)


class CustomersView(DashboardView):
    """Customers, latest order first, searchable by email, name or phone."""

    template_name = "dashboard/customers.html"
    scopes = {"get": Scope.CUSTOMERS_READ}

    def get(self, request: HttpRequest) -> HttpResponse:
        form = CustomerSearchForm(request.GET or None)
        zone = self.actor.restaurant.zone
        currency = self.actor.restaurant.currency
        if form.is_bound and not form.is_valid():
            return self.page(request, status=400, form=form, rows=[], currency=currency, zone=zone)
        data = form.cleaned_data if form.is_bound else {}
        consent = data.get("marketing_consent")
        page = selectors.page_by_last_order(
            selectors.search_customers(
                q=data.get("q", ""),
                marketing_consent=None if not consent else consent == "true",
            ),
            cursor=data.get("cursor"),
            size=PAGE_SIZE,
        )

        def link(cursor: selectors.Cursor | None) -> str | None:
            if cursor is None:
                return None
            query = request.GET.copy()
            query["cursor"] = cursor.encode()
            return "?" + query.urlencode()

        return self.page(
            request,
            form=form,
            rows=[(customer, consent_text(customer, zone)) for customer in page.rows],
            older=link(page.next),
            newer=link(page.previous),
            currency=currency,
            zone=zone,
        )


class CustomerView(DashboardView):
    """One customer: their details, consent and latest orders."""

    template_name = "dashboard/customer.html"
    scopes = {"get": Scope.CUSTOMERS_READ}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        customer = Customer.objects.filter(pk=pk).first()
        if customer is None:
            raise Http404
        zone = self.actor.restaurant.zone
        return self.page(
            request,
            customer=customer,
            consent=consent_text(customer, zone),
            orders=customer_recent_orders(customer.pk),
            currency=self.actor.restaurant.currency,
            zone=zone,
        )
