"""Confirming news from the link in an order email (double opt-in).

Ticking "email me news" at checkout only asks; the order email then carries a signed link
here. Opening the link changes nothing (mail scanners and link previews open links): the
page says what the diner agrees to, and only its button (a POST with CSRF) gives consent.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from customers.consent import customer_for_token
from customers.services import customer_confirm_consent
from nordkestrel.ratelimit import OnOutage, limit
from storefront.base import StorefrontView, see_other


class ConsentConfirmView(StorefrontView):
    template_name = "storefront/consent.html"
    cache_control = "private, no-store"

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        customer = customer_for_token(token)
        if customer is None:
            return self.page(request, status=400, invalid=True)
        return self.page(request, customer=customer)

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        # Each guess at a token costs a request, per client address.
        limit(
            request,
            group="consent-confirm",
            rate=settings.CONSENT_CONFIRM_RATE,
            on_outage=OnOutage.ALLOW,
        )
        customer = customer_for_token(token)
        if customer is None:
            return self.page(request, status=400, invalid=True)
        customer_confirm_consent(customer_id=customer.pk, now=self.now)
        return see_other(reverse("storefront:consent-confirm", args=[token]))
