"""An order's way through the kitchen: each step checked against the graph and the actor."""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.utils import timezone

from audit import registry
from audit import services as audit
from audit.services import SystemActor
from nordkestrel import events
from nordkestrel.errors import ConflictError, InvalidInput, NotFoundError
from nordkestrel.text import storable
from orders import events as order_events
from orders import payment_methods
from orders.customer_stats import customer_refresh_stats
from orders.models import Order, Status, StatusChange
from promotions.services import promotion_release, promotion_restore
from staff.auth import Actor
from staff.roles import Scope

# (from, to) -> the scope a staff member needs; None: only the payment flow moves it.
TRANSITIONS: dict[tuple[str, str], Scope | None] = {
    (Status.PENDING_PAYMENT, Status.PLACED): None,
    (Status.PENDING_PAYMENT, Status.CANCELLED): Scope.ORDERS_CANCEL,
    (Status.PLACED, Status.ACCEPTED): Scope.ORDERS_PROGRESS,
    (Status.ACCEPTED, Status.PREPARING): Scope.ORDERS_PROGRESS,
    (Status.PREPARING, Status.READY): Scope.ORDERS_PROGRESS,
    (Status.READY, Status.COMPLETED): Scope.ORDERS_PROGRESS,
    (Status.PLACED, Status.CANCELLED): Scope.ORDERS_CANCEL,
    (Status.ACCEPTED, Status.CANCELLED): Scope.ORDERS_CANCEL,
    (Status.PREPARING, Status.CANCELLED): Scope.ORDERS_CANCEL,
    (Status.READY, Status.CANCELLED): Scope.ORDERS_CANCEL,
}

# The one-tap next step for the kitchen.
NEXT_STEP = {
    Status.PLACED: Status.ACCEPTED,
    Status.ACCEPTED: Status.PREPARING,
    Status.PREPARING: Status.READY,
    Status.READY: Status.COMPLETED,
}

TIMESTAMP_FIELDS = {
    Status.PLACED: "placed_at",
    Status.ACCEPTED: "accepted_at",
    Status.PREPARING: "preparing_at",
    Status.READY: "ready_at",
    Status.COMPLETED: "completed_at",
    Status.CANCELLED: "cancelled_at",
    Status.REFUNDED: "refunded_at",
}


def _locked(order_id: int) -> Order:
    order = Order.objects.select_for_update(no_key=True, of=("self",)).filter(pk=order_id).first()
    if order is None:
        raise NotFoundError("No such order.")
    return order


def _move(order: Order, to_status: str, *, actor_label: str, staff_id: int | None) -> None:
    now = timezone.now()
    from_status = order.status
    order.status = to_status
    setattr(order, TIMESTAMP_FIELDS[Status(to_status)], now)
    order.save(update_fields=["status", TIMESTAMP_FIELDS[Status(to_status)], "updated_at"])
    StatusChange.objects.create(
        order=order,
        from_status=from_status,
        to_status=to_status,
        actor_label=actor_label,
        staff_id=staff_id,
        at=now,
    )
    events.publish(*order_events.status_events(order, from_status=from_status, at=now))


def _check(order: Order, to_status: str) -> Scope | None:
    if to_status not in Status.values:
        raise InvalidInput(f"{to_status!r} is not an order status.", attr="status")
    edge = (order.status, to_status)
    if edge not in TRANSITIONS:
        raise ConflictError(
            f"An order that is {Status(order.status).label.lower()} cannot become "
            f"{Status(to_status).label.lower()}.",
            code="illegal_transition",
            attr="status",
        )
    return TRANSITIONS[edge]


@transaction.atomic
def order_transition(*, actor: Actor, order_id: int, to_status: str, reason: str = "") -> Order:
    """Move an order one step. Asking for the state it is already in changes nothing (a
    double tap in the kitchen must not skip a step)."""
    actor.require(Scope.ORDERS_READ)
    order = _locked(order_id)
    if order.status == to_status:
        return order
    scope = _check(order, to_status)
    if scope is None:
        raise ConflictError(
            "Only a completed payment places this order.", code="illegal_transition", attr="status"
        )
    actor.require(scope)
    if to_status == Status.CANCELLED:
        return _cancel(order, actor=actor, reason=reason)
    _move(order, to_status, actor_label=actor.member.label, staff_id=actor.member.pk)
    return order


def _cancel(order: Order, *, actor: Actor | SystemActor, reason: str) -> Order:
    reason = reason.strip()
    if len(reason) > 300:
        raise InvalidInput("Use at most 300 characters.", attr="reason")
    if not storable(reason):
        raise InvalidInput("That text contains a character we cannot store.", attr="reason")
    from_status = order.status
    order.cancel_reason = reason
    order.save(update_fields=["cancel_reason"])
    if isinstance(actor, Actor):
        _move(order, Status.CANCELLED, actor_label=actor.member.label, staff_id=actor.member.pk)
    else:
        _move(order, Status.CANCELLED, actor_label=actor.name, staff_id=None)
    # Customer before promotion, the order checkout takes them in (no deadlock).
    customer_refresh_stats(order.customer_id)
    promotion_release(order_id=order.pk)
    on_cancelled = getattr(payment_methods.get(order.payment_method), "on_cancelled", None)
    if on_cancelled is not None:
        # E.g. the card payment's intent is cancelled, so the diner can no longer pay for an
        # order that will not be made. Robust: a failure there is logged, not the caller's.
        transaction.on_commit(partial(on_cancelled, order), robust=True)
    audit.record(
        registry.ORDER_CANCELLED,
        actor=actor,
        target=order,
        changes={
            "status": {"before": from_status, "after": Status.CANCELLED},
            "reason": {"before": "", "after": reason},
        },
    )
    return order


@transaction.atomic
def order_cancel(*, actor: Actor, order_id: int, reason: str = "") -> Order:
    return order_transition(
        actor=actor, order_id=order_id, to_status=Status.CANCELLED, reason=reason
    )


@transaction.atomic
def order_mark_paid(*, order_id: int, actor: SystemActor) -> tuple[Order, bool]:
    """The payment flow's step: pending_payment → placed, once (False when already done)."""
    order = _locked(order_id)
    if order.status != Status.PENDING_PAYMENT:
        return order, False
    _move(order, Status.PLACED, actor_label=actor.name, staff_id=None)
    customer_refresh_stats(order.customer_id)
    return order, True


@transaction.atomic
def order_cancel_unpaid(*, order_id: int, actor: SystemActor, reason: str) -> tuple[Order, bool]:
    """The payment flow's cancellation of an order whose payment failed for good."""
    order = _locked(order_id)
    if order.status != Status.PENDING_PAYMENT:
        return order, False
    return _cancel(order, actor=actor, reason=reason), True


@transaction.atomic
def order_mark_refunded(*, order_id: int, actor: Actor | SystemActor) -> Order:
    """A card order whose payment was refunded in full (from any state it was paid in). A
    cancelled order stays cancelled: it is out of the counts and gave its code use back
    already, and its refunds show where the money went."""
    order = _locked(order_id)
    if order.status in (Status.REFUNDED, Status.PENDING_PAYMENT, Status.CANCELLED):
        return order
    if isinstance(actor, Actor):
        _move(order, Status.REFUNDED, actor_label=actor.member.label, staff_id=actor.member.pk)
    else:
        _move(order, Status.REFUNDED, actor_label=actor.name, staff_id=None)
    customer_refresh_stats(order.customer_id)
    promotion_release(order_id=order.pk)
    return order


@transaction.atomic
def order_unmark_refunded(*, order_id: int, actor: SystemActor) -> Order:
    """A refunded order whose refund failed at Stripe (the money stayed with the restaurant):
    back to the status it had before, from its history, counted again with its code use.
    Its timestamps stay as they were; the history shows both moves."""
    order = _locked(order_id)
    if order.status != Status.REFUNDED:
        return order
    last = (
        StatusChange.objects.filter(order=order, to_status=Status.REFUNDED)
        .order_by("-at", "-id")
        .first()
    )
    previous = last.from_status if last is not None and last.from_status else Status.PLACED
    now = timezone.now()
    order.status = previous
    order.refunded_at = None
    order.save(update_fields=["status", "refunded_at", "updated_at"])
    StatusChange.objects.create(
        order=order,
        from_status=Status.REFUNDED,
        to_status=previous,
        actor_label=actor.name,
        staff_id=None,
        at=now,
    )
    events.publish(order_events.status_changed(order, from_status=Status.REFUNDED, at=now))
    customer_refresh_stats(order.customer_id)
    promotion_restore(order_id=order.pk)
    return order
