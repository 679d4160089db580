"""Disputes (chargebacks) from Stripe's webhooks, in any order, shown to the Owner and
Admins with the order's evidence as data and as text to paste into Stripe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse

from orders.models import Order
from orders.services import order_transition
from payments.evidence import Evidence, EvidenceLine, EvidenceStep, evidence_text
from payments.models import Dispute
from staff.auth import Actor
from tenants.context import tenant_context
from tests.factories import api_client, token_for
from tests.payments.money_support import audit_events, connect_cards, deliver, paid_order
from tests.support.stripe_server import event

pytestmark = pytest.mark.django_db

DUE = 1_781_000_000  # 2026-06-09 10:13:20 UTC


@pytest.fixture
def shops(restaurants, stripe_stand_in):
    ours, theirs = restaurants
    ours.timezone = "Europe/Helsinki"
    ours.save(update_fields=["timezone"])
    return {"ours": connect_cards(ours), "theirs": connect_cards(theirs)}


@pytest.fixture
def payment(restaurants, shops, stripe_stand_in):
    return paid_order(stripe_stand_in, restaurants[0], shops["ours"])


def dispute_object(payment, status: str = "needs_response", **fields: Any) -> dict[str, Any]:
    return {
        "id": "dp_1",
        "object": "dispute",
        "amount": payment.amount,
        "currency": payment.currency.lower(),
        "charge": payment.charge_id,
        "payment_intent": payment.payment_intent_id,
        "reason": "fraudulent",
        "status": status,
        "created": 1_780_900_000,
        "evidence_details": {"due_by": DUE, "has_evidence": False, "submission_count": 0},
        "is_charge_refundable": False,
        **fields,
    }


def send(payment, event_type: str, status: str, created: int, **fields: Any):
    obj = dispute_object(payment, status, **fields)
    return deliver(event(event_type, obj, account=payment.account_id, created=created))


def disputes(restaurant) -> list[tuple[str, str, bool]]:
    with tenant_context(restaurant):
        return [
            (d.dispute_id, d.status, d.closed_at is not None)
            for d in Dispute.objects.order_by("id")
        ]


# --- Recording -----------------------------------------------------------------------------


def test_a_new_dispute_is_recorded_on_the_order_and_audited_once(restaurants, payment):
    ours = restaurants[0]
    send(payment, "charge.dispute.created", "needs_response", 1_000)
    send(payment, "charge.dispute.created", "needs_response", 1_000)  # repeated
    with tenant_context(ours):
        dispute = Dispute.objects.get()
    assert dispute.payment_id == payment.pk
    assert (dispute.amount, dispute.currency, dispute.reason, dispute.status) == (
        payment.amount,
        payment.currency,
        "fraudulent",
        "needs_response",
    )
    assert dispute.evidence_due_by == datetime.fromtimestamp(DUE, tz=UTC)
    assert dispute.opened_at == datetime.fromtimestamp(1_780_900_000, tz=UTC)
    assert dispute.closed_at is None
    [opened] = audit_events(ours, "payment.dispute_opened")
    assert opened.actor_type == "stripe"
    assert "dp_1" in opened.target_label
    assert audit_events(ours, "payment.dispute_closed") == []


def test_a_late_created_never_reopens_a_closed_dispute(restaurants, payment):
    ours = restaurants[0]
    send(payment, "charge.dispute.closed", "won", 3_000)
    send(payment, "charge.dispute.updated", "under_review", 2_000)
    send(payment, "charge.dispute.created", "needs_response", 1_000)
    # Even one stamped with the same second as the closing.
    send(payment, "charge.dispute.created", "needs_response", 3_000)
    assert disputes(ours) == [("dp_1", "won", True)]
    assert len(audit_events(ours, "payment.dispute_opened")) == 1
    [closed] = audit_events(ours, "payment.dispute_closed")
    assert closed.changes == {"status": {"before": None, "after": "won"}}


def test_a_dispute_moves_forward_and_closes_with_its_outcome(restaurants, payment):
    ours = restaurants[0]
    send(payment, "charge.dispute.created", "needs_response", 1_000)
    send(payment, "charge.dispute.updated", "under_review", 2_000)
    send(payment, "charge.dispute.updated", "needs_response", 1_500)  # older: ignored
    assert disputes(ours) == [("dp_1", "under_review", False)]
    send(payment, "charge.dispute.closed", "lost", 4_000)
    send(payment, "charge.dispute.closed", "lost", 4_000)
    assert disputes(ours) == [("dp_1", "lost", True)]
    [closed] = audit_events(ours, "payment.dispute_closed")
    assert closed.changes == {"status": {"before": "under_review", "after": "lost"}}
    with tenant_context(ours):
        assert Dispute.objects.get().closed_at == datetime.fromtimestamp(4_000, tz=UTC)


def test_a_dispute_of_an_unknown_charge_changes_nothing(restaurants, shops, payment):
    unknown = dispute_object(payment, charge="ch_nobody", payment_intent="pi_nobody")
    deliver(event("charge.dispute.created", unknown, account=payment.account_id))
    assert disputes(restaurants[0]) == []
    assert audit_events(restaurants[0], "payment.dispute_opened") == []


def test_disputes_stay_in_their_restaurant(restaurants, shops, payment, stripe_stand_in):
    ours, theirs = restaurants
    their_payment = paid_order(stripe_stand_in, theirs, shops["theirs"])
    send(their_payment, "charge.dispute.created", "needs_response", 1_000, id="dp_theirs")
    # Their charge under our account routes to us, where no payment has it.
    obj = dispute_object(their_payment, id="dp_crossed")
    deliver(event("charge.dispute.created", obj, account=payment.account_id))
    assert disputes(ours) == []
    assert disputes(theirs) == [("dp_theirs", "needs_response", False)]


# --- Who sees them -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owner_and_admin_see_disputes(roster, payment, role):
    send(payment, "charge.dispute.created", "needs_response", 1_000)
    client = api_client(roster[("ours", role)])
    listing = client.get(reverse("api-disputes"))
    assert listing.status_code == 200
    [row] = listing.json()["results"]
    assert (row["dispute_id"], row["order"], row["status"], row["open"]) == (
        "dp_1",
        payment.order_id,
        "needs_response",
        True,
    )
    assert row["evidence_due_by"].startswith("2026-06-09T10:13:20")
    detail = client.get(reverse("api-dispute-detail", kwargs={"pk": row["id"]}))
    assert detail.status_code == 200
    assert detail.json()["dispute"]["dispute_id"] == "dp_1"


@pytest.mark.parametrize("role", ["manager", "cashier", "kitchen"])
def test_other_roles_do_not_see_disputes(roster, restaurants, payment, role):
    send(payment, "charge.dispute.created", "needs_response", 1_000)
    with tenant_context(restaurants[0]):
        pk = Dispute.objects.get().pk
    client = api_client(roster[("ours", role)])
    assert client.get(reverse("api-disputes")).status_code == 403
    assert client.get(reverse("api-dispute-detail", kwargs={"pk": pk})).status_code == 403
    pages = signed_in(roster[("ours", role)])
    assert pages.get(reverse("dashboard:disputes")).status_code == 403
    assert pages.get(reverse("dashboard:dispute", args=[pk])).status_code == 403
    order_page = pages.get(reverse("dashboard:order", args=[payment.order_id])).content.decode()
    assert "dp_1" not in order_page


# --- Evidence ------------------------------------------------------------------------------


def progress(restaurant, payment, owner) -> None:
    """The kitchen's way with the order: accepted, preparing, ready, completed."""
    with tenant_context(restaurant):
        for step in ("accepted", "preparing", "ready", "completed"):
            order_transition(actor=Actor(member=owner), order_id=payment.order_id, to_status=step)
        Order.objects.filter(pk=payment.order_id).update(
            placed_at=datetime(2026, 6, 1, 9, 0, tzinfo=UTC),
            accepted_at=datetime(2026, 6, 1, 9, 2, tzinfo=UTC),
            ready_at=datetime(2026, 6, 1, 9, 20, tzinfo=UTC),
            completed_at=datetime(2026, 6, 1, 9, 31, tzinfo=UTC),
        )


def test_the_evidence_has_items_amounts_times_history_and_the_diner(roster, restaurants, payment):
    ours = restaurants[0]
    progress(ours, payment, roster[("ours", "owner")])
    send(payment, "charge.dispute.created", "needs_response", 1_000)
    with tenant_context(ours):
        pk = Dispute.objects.get().pk
        order = Order.objects.get(pk=payment.order_id)
    body = api_client(roster[("ours", "admin")]).get(
        reverse("api-dispute-detail", kwargs={"pk": pk})
    )
    assert body.status_code == 200
    evidence = body.json()["evidence"]
    assert evidence["timezone"] == "Europe/Helsinki"
    assert evidence["order"]["number"] == order.number
    assert evidence["order"]["fulfilment"] == "Pickup"
    # Helsinki is three hours ahead of UTC in June.
    assert evidence["order"]["placed_at"] == "2026-06-01T12:00:00+03:00"
    assert evidence["order"]["accepted_at"] == "2026-06-01T12:02:00+03:00"
    assert evidence["order"]["ready_at"] == "2026-06-01T12:20:00+03:00"
    assert evidence["order"]["completed_at"] == "2026-06-01T12:31:00+03:00"
    burger, fries = evidence["lines"]
    assert (burger["quantity"], burger["name"], burger["note"]) == (2, "Burger", "No onions")
    assert burger["options"] == ["Size: Large", "Extras: Cheese"]
    assert fries["name"] == "Fries"
    assert evidence["amounts"]["total"] == payment.amount
    assert evidence["amounts"]["refunded"] == 0
    assert evidence["payment"]["payment_intent_id"] == payment.payment_intent_id
    assert [step["to"] for step in evidence["history"]] == [
        "Waiting for payment",
        "Placed",
        "Accepted",
        "Preparing",
        "Ready",
        "Completed",
    ]
    assert evidence["customer"] == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "order_count": 1,
        "first_order_at": evidence["customer"]["first_order_at"],
    }

    summary = body.json()["summary"]
    assert f"Order #{order.number} at Ours" in summary
    assert "2 x Burger (Size: Large; Extras: Cheese)" in summary
    assert "note: No onions" in summary
    assert "1 x Fries" in summary
    assert f"Total charged: {payment.amount / 100:.2f} {payment.currency}" in summary
    assert "Placed: 2026-06-01 12:00 (Europe/Helsinki)" in summary
    assert "Completed: 2026-06-01 12:31 (Europe/Helsinki)" in summary
    assert "Ada Lovelace <ada@example.com>, 1 order(s) with us" in summary
    assert "Fulfilment: Pickup" in summary
    assert "Ready -> Completed" in summary


def test_the_evidence_counts_the_diners_other_orders(
    roster, restaurants, shops, payment, stripe_stand_in
):
    ours = restaurants[0]
    for _ in range(2):
        paid_order(stripe_stand_in, ours, shops["ours"])
    send(payment, "charge.dispute.created", "needs_response", 1_000)
    with tenant_context(ours):
        pk = Dispute.objects.get().pk
    body = api_client(roster[("ours", "owner")]).get(
        reverse("api-dispute-detail", kwargs={"pk": pk})
    )
    assert body.json()["evidence"]["customer"]["order_count"] == 3
    assert "3 order(s) with us" in body.json()["summary"]


# --- Pages ---------------------------------------------------------------------------------


def signed_in(member) -> Client:
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token_for(member)
    return client


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_the_dispute_pages_show_the_deadline_and_the_summary(roster, restaurants, payment, role):
    ours = restaurants[0]
    progress(ours, payment, roster[("ours", "owner")])
    send(payment, "charge.dispute.created", "needs_response", 1_000)
    with tenant_context(ours):
        pk = Dispute.objects.get().pk
    client = signed_in(roster[("ours", role)])
    listing = client.get(reverse("dashboard:disputes")).content.decode()
    assert "fraudulent" in listing
    assert reverse("dashboard:dispute", args=[pk]) in listing
    due_local = datetime.fromtimestamp(DUE, tz=UTC) + timedelta(hours=3)
    assert f"{due_local:%Y-%m-%d %H:%M}" in listing
    assert 'href="/dashboard/disputes"' in listing  # in the navigation

    detail = client.get(reverse("dashboard:dispute", args=[pk]))
    html = detail.content.decode()
    assert detail.status_code == 200
    assert 'data-testid="evidence-summary"' in html
    assert "2 x Burger (Size: Large; Extras: Cheese)" in html
    assert "ada@example.com" in html
    assert "Evidence due by" in html

    order_page = client.get(reverse("dashboard:order", args=[payment.order_id])).content.decode()
    assert 'data-testid="order-disputes"' in order_page
    assert reverse("dashboard:dispute", args=[pk]) in order_page


def test_a_closed_dispute_shows_no_deadline(roster, restaurants, payment):
    send(payment, "charge.dispute.closed", "won", 2_000)
    with tenant_context(restaurants[0]):
        pk = Dispute.objects.get().pk
    html = signed_in(roster[("ours", "owner")]).get(reverse("dashboard:dispute", args=[pk]))
    assert "Evidence due by" not in html.content.decode()
    assert "won" in html.content.decode()


def test_a_delivered_orders_evidence_says_where_it_went(
    roster, restaurants, shops, stripe_stand_in
):
    ours = restaurants[0]
    ours.delivery_enabled = True
    ours.save(update_fields=["delivery_enabled"])
    delivered = paid_order(stripe_stand_in, ours, shops["ours"], fulfilment="delivery")
    send(delivered, "charge.dispute.created", "needs_response", 1_000)
    with tenant_context(ours):
        pk = Dispute.objects.get().pk
    body = api_client(roster[("ours", "owner")]).get(
        reverse("api-dispute-detail", kwargs={"pk": pk})
    )
    address = "Runeberginkatu 5, 00100, Helsinki"
    assert body.json()["evidence"]["order"]["delivery_address"] == address
    assert f"Fulfilment: Delivery to {address}." in body.json()["summary"]


def evidence_fixture(**fields: Any) -> Evidence:
    """A disputed order as the evidence reads it, with text a page would escape."""
    zone = ZoneInfo("Europe/Helsinki")
    values: dict[str, Any] = {
        "restaurant": "Ours & Co",
        "zone": zone,
        "order_number": 1042,
        "order_id": 7,
        "status": "Completed",
        "fulfilment": "Delivery",
        "currency": "EUR",
        "subtotal": 2450,
        "discount": 300,
        "tax": 344,
        "delivery_fee": 490,
        "tip": 200,
        "total": 3184,
        "amount_refunded": 500,
        "payment_intent_id": "pi_3Ab",
        "charge_id": "ch_3Ab",
        "times": {
            "placed_at": datetime(2026, 6, 1, 9, 0, tzinfo=UTC),
            "accepted_at": datetime(2026, 6, 1, 9, 2, tzinfo=UTC),
            "ready_at": None,
            "completed_at": datetime(2026, 6, 1, 9, 31, tzinfo=UTC),
        },
        "lines": [
            EvidenceLine(
                quantity=2,
                name="Burger <deluxe>",
                options=["Size: Large", "Extras: Cheese & bacon"],
                note='No "onions"',
                unit_price=900,
                line_total=1800,
            ),
            EvidenceLine(
                quantity=1, name="Fries", options=[], note="", unit_price=650, line_total=650
            ),
        ],
        "history": [
            EvidenceStep(
                at=datetime(2026, 6, 1, 9, 0, tzinfo=UTC),
                from_status="",
                to_status="Placed",
                actor_label="Diner",
            ),
            EvidenceStep(
                at=datetime(2026, 6, 1, 9, 2, tzinfo=UTC),
                from_status="Placed",
                to_status="Accepted",
                actor_label="Ada <owner>",
            ),
        ],
        "delivery_address": "Runeberginkatu 5, 00100, Helsinki",
        "customer_name": "Bea O'Brien",
        "customer_email": "bea@example.com",
        "customer_order_count": 3,
        "customer_first_order_at": datetime(2026, 1, 5, 17, 45, tzinfo=UTC),
    }
    values.update(fields)
    return Evidence(**values)


def test_the_evidence_text_reads_exactly_so():
    dispute = Dispute(dispute_id="dp_1", amount=3184, currency="EUR", reason="fraudulent")
    assert evidence_text(evidence_fixture(), dispute) == (
        "Order #1042 at Ours & Co, paid by card (payment pi_3Ab, charge ch_3Ab).\n"
        "Disputed amount: 31.84 EUR (fraudulent).\n"
        "\n"
        "Fulfilment: Delivery to Runeberginkatu 5, 00100, Helsinki. Order status now: Completed.\n"
        "Placed: 2026-06-01 12:00 (Europe/Helsinki)\n"
        "Accepted: 2026-06-01 12:02 (Europe/Helsinki)\n"
        "Ready: —\n"
        "Completed: 2026-06-01 12:31 (Europe/Helsinki)\n"
        "\n"
        "Customer: Bea O'Brien <bea@example.com>, 3 order(s) with us (not counting cancelled or "
        "refunded ones), the first on 2026-01-05 19:45 (Europe/Helsinki).\n"
        "\n"
        "Items:\n"
        "  2 x Burger <deluxe> (Size: Large; Extras: Cheese & bacon): 18.00 EUR"
        ' — note: No "onions"\n'
        "  1 x Fries: 6.50 EUR\n"
        "\n"
        "Subtotal: 24.50 EUR\n"
        "Discount: -3.00 EUR\n"
        "Tax: 3.44 EUR\n"
        "Delivery: 4.90 EUR\n"
        "Tip: 2.00 EUR\n"
        "Total charged: 31.84 EUR\n"
        "Refunded: 5.00 EUR\n"
        "\n"
        "Status history:\n"
        "  2026-06-01 12:00 (Europe/Helsinki): Placed (by Diner)\n"
        "  2026-06-01 12:02 (Europe/Helsinki): Placed -> Accepted (by Ada <owner>)\n"
    )


def test_the_evidence_text_leaves_out_what_the_order_does_not_have():
    dispute = Dispute(dispute_id="dp_2", amount=1200, currency="JPY", reason="")
    evidence = evidence_fixture(
        restaurant="Ours",
        fulfilment="Pickup",
        currency="JPY",
        subtotal=1100,
        discount=0,
        tax=100,
        delivery_fee=0,
        tip=0,
        total=1200,
        amount_refunded=0,
        charge_id="",
        times=dict.fromkeys(("placed_at", "accepted_at", "ready_at", "completed_at")),
        lines=[EvidenceLine(1, "Ramen", [], "", 1100, 1100)],
        history=[],
        delivery_address="",
        customer_order_count=1,
        customer_first_order_at=None,
    )
    assert evidence_text(evidence, dispute) == (
        "Order #1042 at Ours, paid by card (payment pi_3Ab).\n"
        "Disputed amount: 1200 JPY.\n"
        "\n"
        "Fulfilment: Pickup. Order status now: Completed.\n"
        "Placed: —\n"
        "Accepted: —\n"
        "Ready: —\n"
        "Completed: —\n"
        "\n"
        "Customer: Bea O'Brien <bea@example.com>, 1 order(s) with us (not counting cancelled or "
        "refunded ones).\n"
        "\n"
        "Items:\n"
        "  1 x Ramen: 1100 JPY\n"
        "\n"
        "Subtotal: 1100 JPY\n"
        "Tax: 100 JPY\n"
        "Total charged: 1200 JPY\n"
        "Refunded: 0 JPY\n"
        "\n"
        "Status history:\n"
    )
