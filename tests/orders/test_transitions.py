"""The status graph: every pair of statuses, every role on every edge, cancellation's side
effects, and two taps at once."""

import itertools
import uuid
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import SystemActor
from customers.models import Customer
from nordkestrel.errors import ConflictError, InvalidInput, NotFoundError, PermissionDeniedError
from orders.checkout_request import parse_checkout
from orders.models import Order, Status, StatusChange
from orders.placement import place_order
from orders.services import (
    NEXT_STEP,
    TRANSITIONS,
    order_cancel,
    order_mark_paid,
    order_transition,
)
from promotions.models import Promotion, Redemption
from staff.auth import Actor
from staff.roles import Role
from tenants.context import tenant_context
from tests.factories import make_restaurant, make_shop, make_staff, open_all_week, run_concurrently

STATUSES = list(Status.values)
# The graph as SPEC.md draws it; the code's TRANSITIONS must be exactly this.
KITCHEN_FLOW = [
    ("placed", "accepted"),
    ("accepted", "preparing"),
    ("preparing", "ready"),
    ("ready", "completed"),
]
CANCELLABLE = ["pending_payment", "placed", "accepted", "preparing", "ready"]
PAYMENT_ONLY = ("pending_payment", "placed")
EDGES = [*KITCHEN_FLOW, *[(s, "cancelled") for s in CANCELLABLE], PAYMENT_ONLY]
# SPEC.md's role table: everyone moves orders through the kitchen; Managers and up cancel.
MAY_PROGRESS = {"owner", "admin", "manager", "cashier", "kitchen"}
MAY_CANCEL = {"owner", "admin", "manager"}
TIMESTAMPS = {
    "placed": "placed_at",
    "accepted": "accepted_at",
    "preparing": "preparing_at",
    "ready": "ready_at",
    "completed": "completed_at",
    "cancelled": "cancelled_at",
}
NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)  # a Monday, inside opening hours
_numbers = itertools.count(1)

pytestmark = pytest.mark.django_db


def make_order(restaurant, status: str) -> Order:
    """An order sitting in ``status`` (as if it had got there), with no timestamps of later
    steps."""
    with tenant_context(restaurant):
        customer, _ = Customer.objects.get_or_create(
            email="ada@example.com", defaults={"name": "Ada"}
        )
        now = timezone.now()
        return Order.objects.create(
            number=next(_numbers), status=status, fulfilment="pickup",
            payment_method="in_person", customer=customer, contact_name="Ada",
            contact_email="ada@example.com", contact_phone="", promised_at=now, slot_start=now,
            currency="EUR", subtotal=1000, tax_rate=0, prices_include_tax=True, total=1000,
            menu_version=1, idempotency_key=str(uuid.uuid4()), request_fingerprint="0" * 64,
        )  # fmt: skip


def fresh(restaurant, order: Order) -> Order:
    with tenant_context(restaurant):
        return Order.objects.get(pk=order.pk)


def changes_of(restaurant, order: Order) -> list[tuple[str, str]]:
    with tenant_context(restaurant):
        return list(
            StatusChange.objects.filter(order_id=order.pk).values_list("from_status", "to_status")
        )


def move(restaurant, member, order: Order, to_status: str, **kwargs) -> Order:
    with tenant_context(restaurant):
        return order_transition(
            actor=Actor(member=member), order_id=order.pk, to_status=to_status, **kwargs
        )


def test_the_graph_is_the_one_spec_md_draws():
    assert set(TRANSITIONS) == set(EDGES)
    assert TRANSITIONS[PAYMENT_ONLY] is None
    assert dict(NEXT_STEP) == dict(KITCHEN_FLOW)


@pytest.mark.parametrize(("from_status", "to_status"), list(itertools.product(STATUSES, STATUSES)))
def test_every_pair_of_statuses(roster, restaurants, from_status, to_status):
    """The Owner holds every scope, so only the graph decides here."""
    ours = restaurants[0]
    owner = roster[("ours", "owner")]
    order = make_order(ours, from_status)
    before = fresh(ours, order)
    field = TIMESTAMPS.get(to_status)

    if from_status == to_status:
        # A double tap: success, and nothing changes.
        result = move(ours, owner, order, to_status)
        assert result.status == to_status
        assert fresh(ours, order).updated_at == before.updated_at
        assert changes_of(ours, order) == []
    elif (from_status, to_status) in EDGES and (from_status, to_status) != PAYMENT_ONLY:
        move(ours, owner, order, to_status, reason="Test")
        after = fresh(ours, order)
        assert after.status == to_status
        assert field is not None
        assert getattr(after, field) is not None
        assert getattr(before, field) is None
        with tenant_context(ours):
            change = StatusChange.objects.get(order_id=order.pk)
        assert (change.from_status, change.to_status) == (from_status, to_status)
        assert (change.staff_id, change.actor_label) == (owner.pk, owner.label)
    else:
        with pytest.raises(ConflictError) as refused:
            move(ours, owner, order, to_status)
        assert refused.value.code == "illegal_transition"
        assert refused.value.status == 409
        after = fresh(ours, order)
        assert after.status == from_status
        assert after.updated_at == before.updated_at
        if field:
            assert getattr(after, field) is None
        assert changes_of(ours, order) == []


@pytest.mark.parametrize("role", [role.value for role in Role])
@pytest.mark.parametrize(("from_status", "to_status"), EDGES)
def test_each_role_on_each_edge(roster, restaurants, role, from_status, to_status):
    ours = restaurants[0]
    order = make_order(ours, from_status)
    member = roster[("ours", role)]
    if (from_status, to_status) == PAYMENT_ONLY:
        expected: type[Exception] | None = ConflictError  # nobody on the staff places an order
    elif to_status == "cancelled":
        expected = None if role in MAY_CANCEL else PermissionDeniedError
    else:
        expected = None if role in MAY_PROGRESS else PermissionDeniedError

    if expected is None:
        move(ours, member, order, to_status)
        assert fresh(ours, order).status == to_status
        assert changes_of(ours, order) == [(from_status, to_status)]
    else:
        with pytest.raises(expected):
            move(ours, member, order, to_status)
        assert fresh(ours, order).status == from_status
        assert changes_of(ours, order) == []


@pytest.mark.parametrize("role", ["kitchen", "cashier"])
def test_kitchen_and_cashier_cannot_cancel_through_either_service(roster, restaurants, role):
    ours = restaurants[0]
    order = make_order(ours, "placed")
    with tenant_context(ours), pytest.raises(PermissionDeniedError):
        order_cancel(actor=Actor(member=roster[("ours", role)]), order_id=order.pk, reason="x")
    assert fresh(ours, order).status == "placed"
    with tenant_context(ours):
        assert not AuditEvent.objects.filter(action="order.cancelled").exists()


def test_only_the_payment_flow_places_an_order(roster, restaurants):
    ours = restaurants[0]
    order = make_order(ours, "pending_payment")
    with pytest.raises(ConflictError) as refused:
        move(ours, roster[("ours", "owner")], order, "placed")
    assert refused.value.code == "illegal_transition"
    assert fresh(ours, order).status == "pending_payment"
    with tenant_context(ours):
        paid, moved = order_mark_paid(order_id=order.pk, actor=SystemActor("stripe"))
        _, moved_again = order_mark_paid(order_id=order.pk, actor=SystemActor("stripe"))
    assert (paid.status, moved, moved_again) == ("placed", True, False)
    assert fresh(ours, order).placed_at is not None
    assert changes_of(ours, order) == [("pending_payment", "placed")]


@pytest.mark.parametrize("final", ["completed", "cancelled"])
def test_a_finished_order_cannot_move(roster, restaurants, final):
    ours = restaurants[0]
    order = make_order(ours, final)
    for to_status in STATUSES:
        if to_status == final:
            continue
        with pytest.raises(ConflictError):
            move(ours, roster[("ours", "owner")], order, to_status)
    assert fresh(ours, order).status == final


def test_unknown_status_is_invalid_input(roster, restaurants):
    ours = restaurants[0]
    order = make_order(ours, "placed")
    with pytest.raises(InvalidInput) as refused:
        move(ours, roster[("ours", "owner")], order, "eaten")
    assert refused.value.attr == "status"
    assert fresh(ours, order).status == "placed"


def test_the_kitchen_flow_end_to_end_sets_each_timestamp_once(roster, restaurants):
    ours = restaurants[0]
    cook = roster[("ours", "kitchen")]
    order = make_order(ours, "placed")
    for _, to_status in KITCHEN_FLOW:
        move(ours, cook, order, to_status)
        move(ours, cook, order, to_status)  # the double tap
    after = fresh(ours, order)
    assert after.status == "completed"
    assert all(getattr(after, TIMESTAMPS[s]) for _, s in KITCHEN_FLOW)
    assert changes_of(ours, order) == KITCHEN_FLOW


def test_another_restaurants_order_is_not_found(roster, restaurants):
    ours, theirs = restaurants
    order = make_order(theirs, "placed")
    with tenant_context(ours), pytest.raises(NotFoundError):
        order_transition(
            actor=Actor(member=roster[("ours", "owner")]), order_id=order.pk, to_status="accepted"
        )
    assert fresh(theirs, order).status == "placed"


# --- Cancellation's side effects -------------------------------------------------------------


def place_with_code(restaurant, code: str) -> Order:
    ids = make_shop(restaurant)
    body = {
        "lines": [{"item_id": ids["fries"], "quantity": 2}],
        "name": "Ada",
        "email": "ada@example.com",
        "promotion_code": code,
    }
    with tenant_context(restaurant):
        order, created = place_order(
            restaurant=restaurant,
            request=parse_checkout(body, restaurant.zone),
            idempotency_key="k-1",
            now=NOW,
        )
    assert created
    return order


def test_cancelling_audits_once_releases_the_code_and_refreshes_the_customer(roster, restaurants):
    ours = restaurants[0]
    open_all_week(ours)
    with tenant_context(ours):
        promotion = Promotion.objects.create(
            code="SAVE10", kind="percent", value=10, max_redemptions=1
        )
    order = place_with_code(ours, "save10")
    with tenant_context(ours):
        customer = Customer.objects.get(pk=order.customer_id)
        assert customer.order_count == 1
        assert customer.total_spent == order.total > 0
        assert Promotion.objects.get(pk=promotion.pk).redemption_count == 1

    manager = roster[("ours", "manager")]
    with tenant_context(ours):
        order_cancel(actor=Actor(member=manager), order_id=order.pk, reason="  Out of fries ")
        # A second cancel is the no-op of asking for the current status: no second event.
        order_cancel(actor=Actor(member=manager), order_id=order.pk, reason="again")

    with tenant_context(ours):
        after = Order.objects.get(pk=order.pk)
        events = list(AuditEvent.objects.filter(action="order.cancelled"))
        customer = Customer.objects.get(pk=order.customer_id)
        redemption = Redemption.objects.get(order_id=order.pk)
        promotion.refresh_from_db()
    assert (after.status, after.cancel_reason) == ("cancelled", "Out of fries")
    assert after.cancelled_at is not None
    assert len(events) == 1
    event = events[0]
    assert (event.target_id, event.actor_id) == (str(order.pk), manager.pk)
    assert event.changes["reason"]["after"] == "Out of fries"
    assert event.changes["status"] == {"before": "placed", "after": "cancelled"}
    assert (customer.order_count, customer.total_spent) == (0, 0)
    assert redemption.counted is False
    assert promotion.redemption_count == 0


@pytest.mark.parametrize("reason", ["x" * 301, "bad\x00text"])
def test_a_bad_reason_cancels_nothing(roster, restaurants, reason):
    ours = restaurants[0]
    order = make_order(ours, "accepted")
    with tenant_context(ours), pytest.raises(InvalidInput):
        order_cancel(
            actor=Actor(member=roster[("ours", "owner")]), order_id=order.pk, reason=reason
        )
    assert fresh(ours, order).status == "accepted"
    with tenant_context(ours):
        assert not AuditEvent.objects.filter(action="order.cancelled").exists()
    assert changes_of(ours, order) == []


# --- Two taps at once ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_taps_make_one_step():
    restaurant = make_restaurant("rush")
    make_restaurant("other")
    cooks = [make_staff(restaurant, Role.KITCHEN), make_staff(restaurant, Role.CASHIER)]
    order = make_order(restaurant, "placed")

    def tap(member):
        def run():
            with tenant_context(restaurant):
                return order_transition(
                    actor=Actor(member=member), order_id=order.pk, to_status="accepted"
                ).status

        return run

    results = run_concurrently(*(tap(member) for member in cooks))
    assert results == ["accepted", "accepted"]
    assert changes_of(restaurant, order) == [("placed", "accepted")]
    assert fresh(restaurant, order).status == "accepted"
