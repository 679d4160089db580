"""Paying a card order: the payment page (Stripe's Payment Element) and Stripe's return.

Card details never reach our pages: every card field sits in Stripe's iframe, loaded from
``https://js.stripe.com`` only, and this page alone gets a Content Security Policy that lets
Stripe in. Whether an order is paid is asked of Stripe (or told by its webhook), never read
from the browser's return address.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.csp import CSP
from django.utils.decorators import method_decorator
from django.views.decorators.csp import csp_override

from nordkestrel.errors import ConflictError
from nordkestrel.ratelimit import OnOutage, limit
from orders.models import Order, PaymentMethod, Status
from payments.gateway import GatewayError
from payments.models import Payment
from payments.services import CardPayment, payment_confirm_return, payment_start
from storefront.base import StorefrontView, see_other

STRIPE_JS = "https://js.stripe.com/v3"
# What Stripe.js and the Payment Element need (docs.stripe.com/security/guide, "Content
# Security Policy"): its script and the frames it opens from js.stripe.com and its
# subdomains, 3D Secure and redirects through hooks.stripe.com, and its API. The Address
# Element's Google Maps origins are left out: this page does not use it.
STRIPE_SCRIPTS = ["https://js.stripe.com", "https://*.js.stripe.com"]
STRIPE_FRAMES = ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"]
STRIPE_CONNECT = ["https://api.stripe.com"]


# The payment page's own policy, written out rather than derived from ``SECURE_CSP``: that
# one grows with what other pages need (Clerk's origins in production, for signing in), and
# none of it belongs on the page that holds the card form. Our own files and nonced code,
# exactly Stripe's origins, and the rest as strict as the site's.
PAY_CSP: dict[str, list[str]] = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE, *STRIPE_SCRIPTS],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF, *STRIPE_CONNECT],
    "frame-src": STRIPE_FRAMES,
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

CARDS_UNAVAILABLE = (
    "{name} cannot take card payments right now, so this order is not confirmed and will not "
    "be prepared. Please order again and choose to pay at pickup, or call the restaurant."
)
NOT_STARTED = (
    "We could not reach our card payment provider. Your order is saved and waits for your "
    "payment: please try again."
)
PROCESSING = "Your payment is being processed. This page shows your order once it is paid."
CANCELED = "This payment was cancelled, so the order will not be prepared. Please order again."
DECLINED = "Your payment did not go through. Please try again, or use another card."
PAID = "Thank you, your payment went through."
UNCONFIRMED = (
    "We could not confirm your payment with our card payment provider yet. If you paid, "
    "this page shows your order as placed in a moment."
)


class PaymentPage(StorefrontView):
    cache_control = "private, no-store"

    def card_order(self, public_id: Any) -> Order:
        """This restaurant's card order; any other order answers as a missing one."""
        order = Order.objects.filter(public_id=public_id, payment_method=PaymentMethod.CARD).first()
        if order is None:
            raise Http404("No such order.")
        return order

    def cards_taken(self) -> bool:
        return bool(settings.STRIPE_PUBLISHABLE_KEY) and CardPayment().offered(self.restaurant)


def status_url(order: Order) -> str:
    return reverse("storefront:order", args=[order.public_id])


def pay_url(order: Order) -> str:
    return reverse("storefront:pay", args=[order.public_id])


@method_decorator(csp_override(PAY_CSP), name="dispatch")
class PayView(PaymentPage):
    """Stripe's Payment Element for a card order that waits for its payment."""

    template_name = "storefront/pay.html"

    def get(self, request: HttpRequest, public_id: Any) -> HttpResponse:
        order = self.card_order(public_id)
        if order.status != Status.PENDING_PAYMENT:
            return HttpResponseRedirect(status_url(order))
        return self._page(request, order, Payment.objects.filter(order=order).first())

    def post(self, request: HttpRequest, public_id: Any) -> HttpResponse:
        """Try again to start the payment (the PaymentIntent is created once per order)."""
        limit(request, group="checkout", rate=settings.CHECKOUT_RATE, on_outage=OnOutage.ALLOW)
        order = self.card_order(public_id)
        if order.status != Status.PENDING_PAYMENT:
            return see_other(status_url(order))
        if not self.cards_taken():
            return self._page(request, order, None, status=409)
        try:
            payment_start(order=order)
        except GatewayError:
            return self._page(request, order, None, status=503)
        except ConflictError as conflict:
            return self._page(request, order, None, problem=conflict.detail, status=409)
        return see_other(pay_url(order))

    def _page(
        self,
        request: HttpRequest,
        order: Order,
        payment: Payment | None,
        *,
        problem: str = "",
        status: int = 200,
    ) -> HttpResponse:
        retry = False
        if not self.cards_taken():
            problem, payment = CARDS_UNAVAILABLE.format(name=self.restaurant.name), None
        elif payment is None:
            problem, retry = problem or NOT_STARTED, not problem
        elif payment.status == Payment.Status.PROCESSING:
            problem, payment = PROCESSING, None
        elif payment.status == Payment.Status.CANCELED:
            problem, payment = CANCELED, None
        return self.page(
            request,
            status=status,
            order=order,
            payment=payment,
            problem=problem,
            retry=retry,
            stripe_js=STRIPE_JS,
            publishable_key=settings.STRIPE_PUBLISHABLE_KEY,
            return_url=request.build_absolute_uri(
                reverse("storefront:pay-return", args=[order.public_id])
            ),
        )


class PaymentReturnView(PaymentPage):
    """Where Stripe sends the diner back. Its query (``payment_intent``, ``redirect_status``)
    is never read: Stripe is asked how the payment went."""

    def get(self, request: HttpRequest, public_id: Any) -> HttpResponse:
        limit(request, group="checkout", rate=settings.CHECKOUT_RATE, on_outage=OnOutage.ALLOW)
        order = self.card_order(public_id)
        if order.status != Status.PENDING_PAYMENT:
            return HttpResponseRedirect(status_url(order))
        try:
            payment = payment_confirm_return(order=order)
        except GatewayError:
            # The webhook still tells us; the status page follows the order by itself.
            messages.warning(request, UNCONFIRMED)
            return HttpResponseRedirect(status_url(order))
        except ConflictError as conflict:
            messages.error(request, conflict.detail)
            return HttpResponseRedirect(pay_url(order))
        if payment is None:
            return HttpResponseRedirect(pay_url(order))
        if payment.status == Payment.Status.SUCCEEDED:
            messages.success(request, PAID)
            return HttpResponseRedirect(status_url(order))
        if payment.status == Payment.Status.PROCESSING:
            messages.info(request, PROCESSING)
            return HttpResponseRedirect(status_url(order))
        messages.error(request, DECLINED)
        return HttpResponseRedirect(pay_url(order))
