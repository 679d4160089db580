"""The evidence for a dispute: what the restaurant knows of the disputed order, as data and
as plain text (``payments/dispute_evidence.txt``) to paste into Stripe's dispute response.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.template.loader import render_to_string

from orders.models import Order
from payments.models import Dispute
from payments.money_common import major
from tenants.context import current_restaurant


@dataclass(frozen=True)
class EvidenceLine:
    quantity: int
    name: str
    options: list[str]
    note: str
    unit_price: int
    line_total: int


@dataclass(frozen=True)
class EvidenceStep:
    at: datetime
    from_status: str
    to_status: str
    actor_label: str


@dataclass(frozen=True)
class Evidence:
    """What the restaurant knows of a disputed order, in its own time zone."""

    restaurant: str
    zone: ZoneInfo
    order_number: int
    order_id: int
    status: str
    fulfilment: str
    currency: str
    subtotal: int
    discount: int
    tax: int
    delivery_fee: int
    tip: int
    total: int
    amount_refunded: int
    payment_intent_id: str
    charge_id: str
    times: dict[str, datetime | None]
    lines: list[EvidenceLine]
    history: list[EvidenceStep]
    delivery_address: str
    customer_name: str
    customer_email: str
    customer_order_count: int
    customer_first_order_at: datetime | None


EVIDENCE_TIMES = ("placed_at", "accepted_at", "ready_at", "completed_at")


def dispute_evidence(dispute: Dispute) -> Evidence:
    """The order behind a dispute: items, amounts, times, history, fulfilment and the diner
    (contact data: only for roles that may see it, as disputes are)."""
    payment = dispute.payment
    order = (
        Order.objects.select_related("customer")
        .prefetch_related("lines", "status_changes")
        .get(pk=payment.order_id)
    )
    restaurant = current_restaurant()
    customer = order.customer
    return Evidence(
        restaurant=restaurant.name,
        zone=restaurant.zone,
        order_number=order.number,
        order_id=order.pk,
        status=order.get_status_display(),
        fulfilment=order.get_fulfilment_display(),
        currency=order.currency,
        subtotal=order.subtotal,
        discount=order.discount,
        tax=order.tax,
        delivery_fee=order.delivery_fee,
        tip=order.tip,
        total=order.total,
        amount_refunded=payment.amount_refunded,
        payment_intent_id=payment.payment_intent_id,
        charge_id=payment.charge_id,
        times={name: getattr(order, name) for name in EVIDENCE_TIMES},
        lines=[
            EvidenceLine(
                quantity=line.quantity,
                name=line.name,
                options=[_option(m) for m in line.modifiers if isinstance(m, dict)],
                note=line.note,
                unit_price=line.unit_price,
                line_total=line.line_total,
            )
            for line in order.lines.all()
        ],
        history=[
            EvidenceStep(
                at=change.at,
                from_status=change.get_from_status_display() if change.from_status else "",
                to_status=change.get_to_status_display(),
                actor_label=change.actor_label,
            )
            for change in order.status_changes.all()
        ],
        delivery_address=_address(order.delivery_address),
        customer_name=order.contact_name,
        customer_email=order.contact_email,
        customer_order_count=customer.order_count,
        customer_first_order_at=customer.first_order_at,
    )


def _address(address: Any) -> str:
    if not isinstance(address, dict):
        return ""
    parts = [address.get(key) for key in ("line1", "line2", "postal_code", "city")]
    return ", ".join(str(part) for part in parts if part)


def _option(modifier: dict[str, Any]) -> str:
    group, name = str(modifier.get("group") or ""), str(modifier.get("name") or "")
    return f"{group}: {name}" if group else name


def local(moment: datetime | None, zone: ZoneInfo) -> str:
    """A time as the restaurant reads it: "2025-01-06 14:05 (Europe/Helsinki)"."""
    if moment is None:
        return "—"
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"


TIME_LABELS = {
    "placed_at": "Placed",
    "accepted_at": "Accepted",
    "ready_at": "Ready",
    "completed_at": "Completed",
}


def evidence_text(evidence: Evidence, dispute: Dispute) -> str:
    """A plain-text summary of the order, ready to paste into Stripe's dispute response."""
    e = evidence
    money = e.currency
    since = e.customer_first_order_at
    context = {
        "evidence": e,
        "disputed": major(dispute.amount, dispute.currency),
        "reason": dispute.reason,
        "times": [(TIME_LABELS[name], local(e.times[name], e.zone)) for name in EVIDENCE_TIMES],
        "first_order": local(since, e.zone) if since else "",
        "lines": [
            {
                "quantity": line.quantity,
                "name": line.name,
                "options": "; ".join(line.options),
                "total": major(line.line_total, money),
                "note": line.note,
            }
            for line in e.lines
        ],
        "subtotal": major(e.subtotal, money),
        "discount": major(e.discount, money) if e.discount else "",
        "tax": major(e.tax, money),
        "delivery_fee": major(e.delivery_fee, money) if e.delivery_fee else "",
        "tip": major(e.tip, money) if e.tip else "",
        "total": major(e.total, money),
        "refunded": major(e.amount_refunded, money),
        "history": [
            {
                "at": local(step.at, e.zone),
                "from_status": step.from_status,
                "to_status": step.to_status,
                "by": step.actor_label,
            }
            for step in e.history
        ],
    }
    # The text starts with "Order #" and ends with a closing bracket or a colon: stripping
    # only drops the template's own last newline.
    return render_to_string("payments/dispute_evidence.txt", context).strip() + "\n"
