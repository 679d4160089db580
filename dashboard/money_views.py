"""Dashboard pages for money after the sale: refunding an order (Owner, Admin, Manager; the
form sits on the order's page), the account's balance and instant payouts (Owner), and
disputes with the order's evidence (Owner, Admin).

People type major units (12.50); the services take minor units.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse

from dashboard.base import DashboardView
from dashboard.order_views import SeeOther
from nordkestrel.errors import DomainError, PermissionDeniedError
from nordkestrel.money import exponent, to_major
from orders.models import Order
from payments.evidence import TIME_LABELS, dispute_evidence, evidence_text
from payments.models import Dispute
from payments.money_common import AMOUNT_MAX
from payments.payouts import payout_instant, payouts_overview
from payments.refunds import RefundUnconfirmed, refund_create
from staff.roles import Scope
from tenants.context import current_restaurant, tenant_context

DISPUTES_PAGE_SIZE = 50
# The operation id a form carries (minted when the page was drawn).
OPERATION = re.compile(r"[0-9a-f]{32}")


def _minor(text: str, currency: str) -> int:
    """A typed amount ("12.50" or "12,50") in minor units; ValueError with a sentence for
    the person."""
    try:
        value = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        raise ValueError("Enter an amount such as 12.50.") from None
    if not value.is_finite() or value <= 0:
        raise ValueError("Enter an amount above zero.")
    if value.adjusted() > 9:
        raise ValueError("That amount is too large.")
    places = exponent(currency)
    minor = value.scaleb(places)
    if minor != minor.to_integral_value():
        raise ValueError(f"Use at most {places} decimals.")
    if minor > AMOUNT_MAX:
        raise ValueError("That amount is too large.")
    return int(minor)


class OrderRefundView(DashboardView):
    """Refund all or part of an order's card payment: POST ``amount`` (major units),
    ``reason`` and the form's ``operation``; the order's page shows the result. The same form
    sent twice (a double click, a resubmission) refunds once.

    Not one transaction: the refund is reserved and committed before Stripe is asked (see
    ``payments.refunds``)."""

    scopes = {"post": Scope.PAYMENTS_REFUND}
    atomic_request = False

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        with tenant_context(self.actor.restaurant):
            try:
                order = Order.objects.get(pk=int(pk))
            except (Order.DoesNotExist, ValueError, OverflowError):
                raise Http404 from None
        back = SeeOther(reverse("dashboard:order", args=[order.pk]))
        operation = request.POST.get("operation", "")
        if not OPERATION.fullmatch(operation):
            # Without the form's own operation a resubmission could not be told from a new
            # refund: nothing is sent.
            messages.error(request, "Refund: this form is out of date. Check the refunds below.")
            return back
        try:
            amount = _minor(request.POST.get("amount", ""), order.currency)
        except ValueError as error:
            messages.error(request, f"Refund: {error}")
            return back
        try:
            refund, _ = refund_create(
                actor=self.actor,
                order_id=order.pk,
                amount=amount,
                reason=request.POST.get("reason", ""),
                operation_id=operation,
            )
        except PermissionDeniedError as error:
            return self.refuse(request, error.detail)
        except RefundUnconfirmed:
            messages.warning(
                request,
                "Stripe did not confirm the refund in time; it may have been made. It shows "
                "as pending below until Stripe tells us.",
            )
            return back
        except DomainError as error:
            messages.error(request, f"Refund not made: {error.detail}")
            return back
        amount_text = f"{to_major(refund.amount, order.currency)} {order.currency}"
        if refund.status == refund.Status.PENDING:
            messages.success(request, f"Refund of {amount_text} sent; Stripe is processing it.")
        else:
            messages.success(request, f"Refunded {amount_text}.")
        return back


class PayoutsView(DashboardView):
    """The connected account's balance and payouts; the Owner may pay out instantly."""

    template_name = "dashboard/payouts.html"
    scopes = {"get": Scope.PAYOUTS_READ, "post": Scope.PAYOUTS_TRIGGER}

    def get(self, request: HttpRequest) -> HttpResponse:
        currency = current_restaurant().currency
        context: dict[str, Any] = {
            "can_trigger": self.actor.has(Scope.PAYOUTS_TRIGGER),
            "operation": uuid.uuid4().hex,
            "currency": currency,
        }
        try:
            overview = payouts_overview(actor=self.actor)
        except DomainError as error:
            # Stripe could not answer: the page says so (and with the right status).
            return self.page(request, status=error.status, problem=error.detail, **context)
        instant = next((f.instant_available for f in overview.funds if f.currency == currency), 0)
        return self.page(request, overview=overview, instant=instant, **context)

    def post(self, request: HttpRequest) -> HttpResponse:
        back = SeeOther(reverse("dashboard:payouts"))
        currency = current_restaurant().currency
        operation = request.POST.get("operation", "")
        if not OPERATION.fullmatch(operation):
            # A form from elsewhere (or a stale one) gets a key of its own.
            operation = uuid.uuid4().hex
        try:
            amount = _minor(request.POST.get("amount", ""), currency)
        except ValueError as error:
            messages.error(request, f"Payout: {error}")
            return back
        try:
            payout, _ = payout_instant(actor=self.actor, amount=amount, operation_id=operation)
        except DomainError as error:
            messages.error(request, f"Payout not made: {error.detail}")
            return back
        messages.success(
            request,
            f"Instant payout of {to_major(payout.amount, payout.currency)} {payout.currency} "
            f"requested ({payout.status}).",
        )
        return back


class DisputesView(DashboardView):
    """Card disputes, newest first, with their deadlines."""

    template_name = "dashboard/disputes.html"
    scopes = {"get": Scope.PAYMENTS_DISPUTES}

    def get(self, request: HttpRequest) -> HttpResponse:
        disputes = Dispute.objects.select_related("payment__order").order_by("-opened_at", "-id")
        page = Paginator(disputes, DISPUTES_PAGE_SIZE).get_page(request.GET.get("page"))
        return self.page(request, page=page, zone=current_restaurant().zone)


class DisputeView(DashboardView):
    """One dispute and the order's evidence, with a plain-text summary to paste into
    Stripe's response."""

    template_name = "dashboard/dispute.html"
    scopes = {"get": Scope.PAYMENTS_DISPUTES}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        try:
            dispute = Dispute.objects.select_related("payment__order").get(pk=int(pk))
        except (Dispute.DoesNotExist, ValueError, OverflowError):
            raise Http404 from None
        evidence = dispute_evidence(dispute)
        return self.page(
            request,
            dispute=dispute,
            order=dispute.payment.order,
            evidence=evidence,
            times=[(TIME_LABELS[name], moment) for name, moment in evidence.times.items()],
            summary=evidence_text(evidence, dispute),
            zone=evidence.zone,
        )
