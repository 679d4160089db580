"""The payments settings page: the Stripe account's status and fee terms (Owner and Admin),
and connecting and onboarding at Stripe (Owner only).

Stripe's Account Links send the Owner back to two pages here: ``refresh`` (the link expired
or was used: make a fresh one) and ``return`` (onboarding left Stripe's pages). Both check
the signed-in member again; the return page changes nothing, since only ``account.updated``
webhooks change what the account may do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from dashboard.base import DashboardView
from dashboard.order_views import SeeOther
from nordkestrel.errors import DomainError
from payments import onboarding
from staff.roles import Scope


class _PaymentsPage(DashboardView):
    abstract = True
    template_name = "dashboard/payments.html"

    def show(self, request: HttpRequest, status: int = 200, **extra: Any) -> HttpResponse:
        account = onboarding.account_status()
        percent = f"{account.platform_fee_percent:f}"
        return self.page(
            request,
            status=status,
            account=account,
            fee_percent=percent.rstrip("0").rstrip(".") if "." in percent else percent,
            can_connect=self.actor.has(Scope.PAYMENTS_CONNECT),
            **extra,
        )

    def onboarding_link(self, request: HttpRequest) -> str:
        """A fresh Account Link whose refresh and return pages are these; raises DomainError."""
        url = onboarding.account_onboarding_link(
            actor=self.actor,
            refresh_url=request.build_absolute_uri(reverse("dashboard:payments-refresh")),
            return_url=request.build_absolute_uri(reverse("dashboard:payments-return")),
        )
        # The only place the browser is sent off-site: Stripe's own answer, and only https.
        if urlsplit(url).scheme != "https":
            raise onboarding.StripeFailed("Stripe answered with an unusable onboarding link.")
        return url


class PaymentsView(_PaymentsPage):
    scopes = {"get": Scope.RESTAURANT_WRITE, "post": Scope.PAYMENTS_CONNECT}

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.show(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        """Connect with Stripe (the account is created once) and go on to Stripe's pages."""
        try:
            onboarding.account_connect(actor=self.actor)
            url = self.onboarding_link(request)
        except DomainError as error:
            messages.error(request, error.detail)
            return self.show(request, status=error.status)
        return SeeOther(url)


class PaymentsRefreshView(_PaymentsPage):
    """Stripe's ``refresh_url``: the Owner gets a fresh link (never an account of their own
    making: it must already exist)."""

    scopes = {"get": Scope.PAYMENTS_CONNECT}

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            url = self.onboarding_link(request)
        except DomainError as error:
            messages.error(request, error.detail)
            return self.show(request, status=error.status)
        return HttpResponseRedirect(url)


class PaymentsReturnView(_PaymentsPage):
    """Stripe's ``return_url``: shows what we know; whatever the query string says is ignored."""

    scopes = {"get": Scope.RESTAURANT_WRITE}

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.show(request, returned=True)
