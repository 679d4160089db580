"""Stripe webhooks through the real endpoints: payloads signed with Stripe's scheme and the
test secrets, as Stripe would deliver them (and as an attacker or a slow network would)."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse

from customers.models import Customer
from orders.checkout_request import parse_checkout
from orders.models import Order, Status, StatusChange
from orders.placement import place_order
from orders.selectors import kitchen_queue
from payments import handlers
from payments.event_handlers import payment_intent_changed
from payments.models import AccountRoute, Payment, StripeAccount, WebhookEvent
from payments.services import payment_start
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import make_shop, open_all_week, run_concurrently
from tests.support.stripe_server import StripeStandIn, event, pay, sign_event

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday, inside opening hours
SECRETS = {"platform": "whsec_platform_test", "connect": "whsec_connect_test"}


# --- helpers shared with test_payment_race ---------------------------------------------------


def connect_cards(restaurant: Restaurant) -> dict[str, Any]:
    """A restaurant that takes cards: opening hours, a menu, a routed connected account."""
    open_all_week(restaurant)
    ids = make_shop(restaurant)
    account_id = f"acct_{restaurant.slug}"
    with tenant_context(restaurant):
        StripeAccount.objects.create(
            account_id=account_id, details_submitted=True, charges_enabled=True
        )
        AccountRoute.objects.create(account_id=account_id, restaurant=restaurant)
    return {**ids, "account": account_id}


def card_order(restaurant: Restaurant, ids: dict[str, Any], key: str = "k1") -> Payment:
    """A card order waiting for its payment, with its PaymentIntent created at Stripe."""
    body = {
        "lines": [{"item_id": ids["burger"], "quantity": 1, "modifier_ids": [ids["regular"]]}],
        "name": "Ada",
        "email": "ada@example.com",
        "payment_method": "card",
    }
    with tenant_context(restaurant):
        order, _ = place_order(
            restaurant=restaurant,
            request=parse_checkout(body, restaurant.zone),
            idempotency_key=key,
            now=NOW,
        )
        assert order.status == Status.PENDING_PAYMENT
        return payment_start(order=order)


def signed(
    payload: bytes, endpoint: str = "connect", *, secret: str | None = None, **sign: Any
) -> dict[str, Any]:
    return {
        "path": reverse(f"stripe-webhook-{endpoint}"),
        "data": payload,
        "content_type": "application/json",
        "headers": {"Stripe-Signature": sign_event(payload, secret or SECRETS[endpoint], **sign)},
    }


def deliver(envelope: dict[str, Any], endpoint: str = "connect", client: Client | None = None):
    payload = json.dumps(envelope).encode()
    return (client or Client()).post(**signed(payload, endpoint))


def succeeded_event(stand_in: StripeStandIn, payment: Payment, **fields: Any) -> dict[str, Any]:
    """The diner's card went through at Stripe; this is the event Stripe sends about it."""
    intent = pay(stand_in, payment.payment_intent_id)
    return event("payment_intent.succeeded", dict(intent), account=payment.account_id, **fields)


def order_state(restaurant: Restaurant, payment: Payment) -> dict[str, Any]:
    """What staff and the diner see of a card order."""
    with tenant_context(restaurant):
        order = Order.objects.get(pk=payment.order_id)
        fresh = Payment.objects.get(pk=payment.pk)
        customer = Customer.objects.get(pk=order.customer_id)
        return {
            "order": order.status,
            "placed_changes": StatusChange.objects.filter(
                order=order, to_status=Status.PLACED
            ).count(),
            "payment": fresh.status,
            "failure": fresh.failure_message,
            "order_count": customer.order_count,
            "total_spent": customer.total_spent,
            "in_kitchen": kitchen_queue().filter(pk=order.pk).exists(),
        }


def account_state(restaurant: Restaurant) -> dict[str, Any]:
    with tenant_context(restaurant):
        account = StripeAccount.objects.get()
        return {
            "details_submitted": account.details_submitted,
            "charges_enabled": account.charges_enabled,
            "payouts_enabled": account.payouts_enabled,
            "requirements_due": account.requirements_due,
            "disabled_reason": account.disabled_reason,
            "state_as_of": account.state_as_of,
        }


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def shops(restaurants, stripe_stand_in):
    ours, theirs = restaurants
    return {"ours": connect_cards(ours), "theirs": connect_cards(theirs)}


@pytest.fixture
def payment(restaurants, shops):
    return card_order(restaurants[0], shops["ours"])


def account_object(account_id: str, *, enabled: bool, due: list[str], reason: str | None):
    return {
        "id": account_id,
        "object": "account",
        "type": "express",
        "details_submitted": enabled,
        "charges_enabled": enabled,
        "payouts_enabled": enabled,
        "requirements": {"currently_due": due, "disabled_reason": reason},
    }


ENABLED = {
    "details_submitted": True,
    "charges_enabled": True,
    "payouts_enabled": True,
    "requirements_due": [],
    "disabled_reason": "",
}
RESTRICTED = {
    "details_submitted": False,
    "charges_enabled": False,
    "payouts_enabled": False,
    "requirements_due": ["external_account"],
    "disabled_reason": "requirements.past_due",
}


# --- the happy path ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_succeeded_payment_places_the_order_in_the_kitchen_queue(
    restaurants, stripe_stand_in, payment
):
    ours = restaurants[0]
    envelope = succeeded_event(stripe_stand_in, payment)

    response = deliver(envelope)

    assert response.status_code == 200
    assert order_state(ours, payment) == {
        "order": Status.PLACED,
        "placed_changes": 1,
        "payment": Payment.Status.SUCCEEDED,
        "failure": "",
        "order_count": 1,
        "total_spent": payment.amount,
        "in_kitchen": True,
    }
    with tenant_context(ours):  # a routed event is its restaurant's row
        stored = WebhookEvent.objects.get()
    assert (stored.event_id, stored.endpoint, stored.type) == (
        envelope["id"],
        "connect",
        "payment_intent.succeeded",
    )
    assert stored.account_id == payment.account_id
    assert stored.restaurant == ours
    assert stored.processed_at is not None
    assert stored.outcome == "payment succeeded"
    assert stored.payload["data"]["object"]["id"] == payment.payment_intent_id


# --- refused deliveries ------------------------------------------------------------------------


def _tampered(payload: bytes) -> dict[str, Any]:
    request = signed(payload)
    request["data"] = payload.replace(b'"livemode": false', b'"livemode": true ')
    return request


def _unsigned(payload: bytes) -> dict[str, Any]:
    request = signed(payload)
    del request["headers"]
    return request


REFUSED = {
    "bad signature": lambda payload: signed(payload, secret="whsec_someone_else"),
    "stale timestamp": lambda payload: signed(payload, timestamp=int(time.time()) - 301),
    "body altered after signing": _tampered,
    "platform secret on the connect endpoint": lambda payload: signed(
        payload, secret=SECRETS["platform"]
    ),
    "connect secret on the platform endpoint": lambda payload: signed(
        payload, "platform", secret=SECRETS["connect"]
    ),
    "missing signature header": _unsigned,
    "garbled signature header": lambda payload: {
        **signed(payload),
        "headers": {"Stripe-Signature": "t=abc,v1=zz"},
    },
    "signed body that is not JSON": lambda payload: signed(b"\xff not json"),
    "signed JSON that is not an object": lambda payload: signed(b"[1, 2, 3]"),
    "signed object that is not an event": lambda payload: signed(b'{"id": 5}'),
    "signed event holding a NUL character": lambda payload: signed(
        payload.replace(b'"object": "event"', b'"object": "ev\\u0000ent"')
    ),
    "signed event with a lone surrogate in its type": lambda payload: signed(
        payload.replace(b'"payment_intent.succeeded"', b'"payment_intent.\\ud800"')
    ),
    "signed event with a lone surrogate deep in its object": lambda payload: signed(
        payload.replace(
            b'"object": "payment_intent"', b'"object": "payment_intent", "x": ["\\udfff"]'
        )
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(REFUSED))
def test_an_unverifiable_delivery_is_refused_and_nothing_is_stored(
    restaurants, stripe_stand_in, payment, case
):
    ours = restaurants[0]
    envelope = succeeded_event(stripe_stand_in, payment)
    payload = json.dumps(envelope).encode()

    response = Client().post(**REFUSED[case](payload))

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"type", "code", "detail", "attr", "errors"}
    assert body["code"] in {"invalid_signature", "invalid_event"}
    assert WebhookEvent.objects.count() == 0
    assert order_state(ours, payment)["order"] == Status.PENDING_PAYMENT
    assert order_state(ours, payment)["payment"] == Payment.Status.REQUIRES_PAYMENT


@pytest.mark.django_db
def test_the_same_event_signed_correctly_right_now_is_accepted(
    restaurants, stripe_stand_in, payment
):
    """The refusals above are about the signature, not the event: signed with the right
    secret 299 s ago, the same payload goes through."""
    envelope = succeeded_event(stripe_stand_in, payment)
    payload = json.dumps(envelope).encode()

    response = Client().post(**signed(payload, timestamp=int(time.time()) - 299))

    assert response.status_code == 200
    assert order_state(restaurants[0], payment)["order"] == Status.PLACED


@pytest.mark.django_db
def test_an_oversized_body_is_refused(stripe_stand_in):
    payload = json.dumps(
        event("customer.created", {"id": "cus_1", "object": "customer", "note": "x" * 1_100_000})
    ).encode()

    response = Client().post(**signed(payload))

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert WebhookEvent.objects.count() == 0


def _without_id(envelope: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in envelope.items() if k != "id"}).encode()


def _deep_in_object(envelope: dict[str, Any]) -> bytes:
    """A real event whose object carries one field nested 100,000 levels deep."""
    payload = json.dumps(envelope).encode()
    deep = b"[" * 100_000 + b"]" * 100_000
    return payload.replace(
        b'"object": "payment_intent"', b'"object": "payment_intent", "x": ' + deep
    )


MALFORMED_SIGNED = {
    # Each is signed with the endpoint's real secret: only its content is wrong.
    "nested 100,000 deep": lambda envelope: b"[" * 100_000,
    "nested 100,000 deep and closed": lambda envelope: b"[" * 100_000 + b"]" * 100_000,
    "an object nested 100,000 deep": lambda envelope: b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "an event with a field nested 100,000 deep": _deep_in_object,
    "an event nested just past the limit": lambda envelope: (
        json.dumps(
            {**envelope, "data": {"object": {**envelope["data"]["object"], "x": [[[]]] * 1}}}
        )
        .encode()
        .replace(b"[[[]]]", b"[" * 70 + b"]" * 70)
    ),
    "an event without an id": _without_id,
    "an event whose id is null": lambda envelope: json.dumps({**envelope, "id": None}).encode(),
    "an event whose id is a number": lambda envelope: json.dumps({**envelope, "id": 7}).encode(),
    "an event without data": lambda envelope: json.dumps(
        {k: v for k, v in envelope.items() if k != "data"}
    ).encode(),
    "NaN in an event": lambda envelope: (
        json.dumps(envelope).encode().replace(b'"pending_webhooks": 1', b'"pending_webhooks": NaN')
    ),
    "a number too long to convert": lambda envelope: (
        json.dumps(envelope)
        .encode()
        .replace(b'"pending_webhooks": 1', b'"pending_webhooks": ' + b"9" * 5000)
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ["platform", "connect"])
@pytest.mark.parametrize("case", list(MALFORMED_SIGNED))
def test_a_signed_but_malformed_event_is_a_400_and_nothing_is_stored(
    restaurants, stripe_stand_in, payment, endpoint, case
):
    """Stripe retries anything but a 2xx for three days: a body that can never be processed
    is refused once, in the error shape, and nothing is stored or changed."""
    ours = restaurants[0]
    envelope = succeeded_event(stripe_stand_in, payment)

    response = Client(raise_request_exception=False).post(
        **signed(MALFORMED_SIGNED[case](envelope), endpoint)
    )

    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert set(body) == {"type", "code", "detail", "attr", "errors"}
    assert body["code"] in {"invalid_event", "too_deep", "invalid_json"}
    assert WebhookEvent.objects.count() == 0
    assert order_state(ours, payment)["order"] == Status.PENDING_PAYMENT
    assert order_state(ours, payment)["payment"] == Payment.Status.REQUIRES_PAYMENT


def _intent_without(*fields: str):
    def make(envelope: dict[str, Any]) -> bytes:
        obj = {k: v for k, v in envelope["data"]["object"].items() if k not in fields}
        return json.dumps({**envelope, "data": {"object": obj}}).encode()

    return make


def _intent_with(**changes: Any):
    def make(envelope: dict[str, Any]) -> bytes:
        obj = {**envelope["data"]["object"], **changes}
        return json.dumps({**envelope, "data": {"object": obj}}).encode()

    return make


MALFORMED_OBJECTS = {
    "without its id": _intent_without("id"),
    "with a null id": _intent_with(id=None),
    "without its amount": _intent_without("amount"),
    "with an amount in words": _intent_with(amount="twelve"),
    "with an amount out of range": _intent_with(amount=10**30),
    "without its status": _intent_without("status"),
    "with a currency that is a list": _intent_with(currency=["eur"]),
    "with a charge that is a list": _intent_with(latest_charge=["ch_1"]),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(MALFORMED_OBJECTS))
def test_a_signed_payment_intent_event_it_cannot_read_is_a_400(
    restaurants, stripe_stand_in, payment, case
):
    """A handled event whose object lacks what the handler reads can never be applied: a 400
    once, nothing kept, rather than a 500 that Stripe retries for three days."""
    ours = restaurants[0]
    envelope = succeeded_event(stripe_stand_in, payment)

    response = Client(raise_request_exception=False).post(
        **signed(MALFORMED_OBJECTS[case](envelope))
    )

    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == "invalid_event"
    assert WebhookEvent.objects.count() == 0
    assert order_state(ours, payment)["order"] == Status.PENDING_PAYMENT
    # The well-formed delivery of the same event still applies.
    assert deliver(envelope).status_code == 200
    assert order_state(ours, payment)["order"] == Status.PLACED


@pytest.mark.django_db
def test_a_deep_body_is_refused_before_its_signature_is_even_read(stripe_stand_in):
    """Unsigned, the deep body is a 400 like any other unsigned one: never a 500."""
    response = Client(raise_request_exception=False).post(
        reverse("stripe-webhook-connect"), data=b"[" * 100_000, content_type="application/json"
    )

    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "put", "delete"])
@pytest.mark.parametrize("endpoint", ["platform", "connect"])
def test_only_post_is_answered(stripe_stand_in, method, endpoint):
    response = getattr(Client(), method)(reverse(f"stripe-webhook-{endpoint}"))

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["type"] == "invalid_request"
    assert WebhookEvent.objects.count() == 0


@pytest.mark.django_db
def test_no_session_or_csrf_token_is_needed(restaurants, stripe_stand_in, payment):
    client = Client(enforce_csrf_checks=True)

    response = deliver(succeeded_event(stripe_stand_in, payment), client=client)

    assert response.status_code == 200


# --- exactly once ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_repeated_event_has_one_effect(restaurants, stripe_stand_in, payment):
    ours = restaurants[0]
    envelope = succeeded_event(stripe_stand_in, payment)

    responses = [deliver(envelope).status_code for _ in range(3)]

    assert responses == [200, 200, 200]
    state = order_state(ours, payment)
    assert (state["order"], state["placed_changes"], state["payment"]) == (
        Status.PLACED,
        1,
        Payment.Status.SUCCEEDED,
    )
    assert state["order_count"] == 1
    with tenant_context(ours):
        assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
def test_a_repeated_event_runs_its_handler_once(shops, stripe_stand_in, monkeypatch):
    calls: list[str] = []

    def counting(envelope: dict[str, Any]) -> str:
        calls.append(envelope["id"])
        return "counted"

    monkeypatch.setitem(handlers._HANDLERS, "test.counted", counting)
    envelope = event("test.counted", {"id": "obj_1"}, account=shops["ours"]["account"])

    assert [deliver(envelope).status_code for _ in range(3)] == [200, 200, 200]

    assert calls == [envelope["id"]]


@pytest.mark.django_db
def test_the_same_event_on_both_endpoints_is_stored_once(restaurants, stripe_stand_in, payment):
    envelope = succeeded_event(stripe_stand_in, payment)

    assert deliver(envelope, "connect").status_code == 200
    assert deliver(envelope, "platform").status_code == 200

    with tenant_context(restaurants[0]):
        assert WebhookEvent.objects.count() == 1
    assert order_state(restaurants[0], payment)["placed_changes"] == 1


@pytest.mark.usefixtures("transactional_db")
def test_concurrent_deliveries_of_one_event_place_the_order_once(
    restaurants, stripe_stand_in, payment
):
    ours = restaurants[0]
    payload = json.dumps(succeeded_event(stripe_stand_in, payment)).encode()

    results = run_concurrently(*[lambda: Client().post(**signed(payload)) for _ in range(6)])

    assert [getattr(r, "status_code", r) for r in results] == [200] * 6
    state = order_state(ours, payment)
    assert (state["order"], state["placed_changes"], state["order_count"]) == (
        Status.PLACED,
        1,
        1,
    )
    with tenant_context(ours):
        assert WebhookEvent.objects.count() == 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ada@example.com"]


@pytest.mark.usefixtures("transactional_db")
def test_concurrent_deliveries_run_the_handler_once(restaurants, shops, monkeypatch):
    """Even a handler with no idempotency of its own runs once per event: the stored row's
    lock and its processed mark are what make a delivery exactly-once."""
    calls: list[str] = []
    guard = threading.Lock()

    def counting(envelope: dict[str, Any]) -> str:
        with guard:
            calls.append(envelope["id"])
        time.sleep(0.2)  # keeps the first delivery inside its transaction while others arrive
        return "counted"

    monkeypatch.setitem(handlers._HANDLERS, "test.counted", counting)
    payload = json.dumps(
        event("test.counted", {"id": "obj_1", "object": "thing"}, account=shops["ours"]["account"])
    ).encode()

    results = run_concurrently(*[lambda: Client().post(**signed(payload)) for _ in range(5)])

    assert [getattr(r, "status_code", r) for r in results] == [200] * 5
    assert len(calls) == 1
    with tenant_context(restaurants[0]):
        stored = WebhookEvent.objects.get()
    assert stored.outcome == "counted"
    assert stored.restaurant == restaurants[0]


@pytest.mark.django_db
def test_a_delivery_that_read_the_event_unrouted_finds_it_where_it_was_routed(
    restaurants, stripe_stand_in, payment
):
    """A concurrent delivery routes the event while this one waits for its lock: the row is
    then out of sight of a reader with no restaurant, and is processed (found done) in its
    restaurant's context, with no second effect."""
    from payments import inbox

    ours = restaurants[0]
    envelope = succeeded_event(stripe_stand_in, payment)
    assert deliver(envelope).status_code == 200
    with tenant_context(ours):
        routed = WebhookEvent.objects.get()
    assert routed.restaurant == ours
    assert not WebhookEvent.objects.filter(pk=routed.pk).exists()  # hidden outside

    assert inbox.process_where_visible(routed.pk, routed.event_id, None) is True

    assert order_state(ours, payment)["placed_changes"] == 1


# --- failures, retries -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_failing_handler_keeps_the_event_for_stripes_retry(
    restaurants, stripe_stand_in, payment, monkeypatch, caplog
):
    ours = restaurants[0]
    envelope = succeeded_event(stripe_stand_in, payment)

    def places_then_fails(received: dict[str, Any]) -> str:
        payment_intent_changed(received)
        raise RuntimeError("database went away at /srv/secret/path")

    monkeypatch.setitem(handlers._HANDLERS, "payment_intent.succeeded", places_then_fails)
    with caplog.at_level(logging.ERROR, logger="payments.webhooks"):
        failed = deliver(envelope)

    assert failed.status_code == 500
    assert failed.json() == {
        "type": "server_error",
        "code": "webhook_failed",
        "detail": "The event could not be processed now.",
        "attr": None,
    }
    assert b"secret" not in failed.content
    assert any(getattr(r, "event_id", None) == envelope["id"] for r in caplog.records)
    # The effect rolled back with the mark: nothing half-done, the event waits for its retry.
    state = order_state(ours, payment)
    assert (state["order"], state["placed_changes"], state["payment"]) == (
        Status.PENDING_PAYMENT,
        0,
        Payment.Status.REQUIRES_PAYMENT,
    )
    stored = WebhookEvent.objects.get()
    assert stored.processed_at is None
    assert stored.outcome.startswith("failed")

    monkeypatch.undo()
    retried = deliver(envelope)

    assert retried.status_code == 200
    state = order_state(ours, payment)
    assert (state["order"], state["placed_changes"]) == (Status.PLACED, 1)
    with tenant_context(ours):  # routed now: its restaurant's row
        stored.refresh_from_db()
    assert stored.processed_at is not None
    assert stored.outcome == "payment succeeded"


# --- what is stored and acknowledged without an effect ----------------------------------------


@pytest.mark.django_db
def test_an_event_from_the_other_mode_is_stored_and_ignored(restaurants, stripe_stand_in, payment):
    envelope = succeeded_event(stripe_stand_in, payment, livemode=True)

    response = deliver(envelope)

    assert response.status_code == 200
    state = order_state(restaurants[0], payment)
    assert (state["order"], state["payment"]) == (
        Status.PENDING_PAYMENT,
        Payment.Status.REQUIRES_PAYMENT,
    )
    stored = WebhookEvent.objects.get()
    assert stored.livemode is True
    assert "livemode" in stored.outcome
    assert stored.restaurant is None


@pytest.mark.django_db
def test_an_event_for_an_unknown_account_is_stored_and_acknowledged(
    restaurants, stripe_stand_in, shops, payment
):
    intent = pay(stripe_stand_in, payment.payment_intent_id)
    envelope = event("payment_intent.succeeded", dict(intent), account="acct_nobody")

    response = deliver(envelope)

    assert response.status_code == 200
    assert order_state(restaurants[0], payment)["order"] == Status.PENDING_PAYMENT
    stored = WebhookEvent.objects.get()
    assert stored.account_id == "acct_nobody"
    assert stored.restaurant is None
    assert stored.outcome == "waiting for account acct_nobody, not routed here yet"
    # Not applied: it waits for the account's route, and is applied once it is stored.
    assert (stored.processed_at, stored.waiting_for) == (None, "account:acct_nobody")


@pytest.mark.django_db
def test_an_event_type_without_a_handler_is_stored_and_acknowledged(shops, stripe_stand_in):
    envelope = event(
        "customer.created", {"id": "cus_1", "object": "customer"}, account=shops["ours"]["account"]
    )

    response = deliver(envelope)

    assert response.status_code == 200
    stored = WebhookEvent.objects.get()
    assert (stored.event_id, stored.type) == (envelope["id"], "customer.created")
    assert stored.processed_at is not None
    assert "no handler" in stored.outcome


@pytest.mark.django_db
def test_a_handled_platform_event_without_an_account_changes_nothing(
    restaurants, stripe_stand_in, payment
):
    intent = pay(stripe_stand_in, payment.payment_intent_id)
    envelope = event("payment_intent.succeeded", dict(intent))

    response = deliver(envelope, "platform")

    assert response.status_code == 200
    assert order_state(restaurants[0], payment)["order"] == Status.PENDING_PAYMENT
    assert "no connected account" in WebhookEvent.objects.get().outcome


# --- payment intents ---------------------------------------------------------------------------


def failed_event(stand_in: StripeStandIn, payment: Payment, **fields: Any) -> dict[str, Any]:
    intent = dict(stand_in.objects[payment.payment_intent_id])
    intent.update(
        status="requires_payment_method",
        last_payment_error={"code": "card_declined", "message": "Your card was declined."},
    )
    return event("payment_intent.payment_failed", intent, account=payment.account_id, **fields)


@pytest.mark.django_db
def test_a_failed_attempt_is_noted_and_the_order_stays_payable(
    restaurants, stripe_stand_in, payment
):
    ours = restaurants[0]

    response = deliver(failed_event(stripe_stand_in, payment))

    assert response.status_code == 200
    state = order_state(ours, payment)
    assert (state["order"], state["payment"], state["failure"]) == (
        Status.PENDING_PAYMENT,
        Payment.Status.REQUIRES_PAYMENT,
        "Your card was declined.",
    )
    # The diner tries another card, which goes through.
    assert deliver(succeeded_event(stripe_stand_in, payment)).status_code == 200
    state = order_state(ours, payment)
    assert (state["order"], state["payment"]) == (Status.PLACED, Payment.Status.SUCCEEDED)


@pytest.mark.django_db
def test_a_late_failure_never_undoes_a_success(restaurants, stripe_stand_in, payment):
    ours = restaurants[0]
    stale_failure = failed_event(stripe_stand_in, payment, created=int(time.time()) - 60)

    assert deliver(succeeded_event(stripe_stand_in, payment)).status_code == 200
    assert deliver(stale_failure).status_code == 200

    state = order_state(ours, payment)
    assert (state["order"], state["placed_changes"], state["payment"], state["failure"]) == (
        Status.PLACED,
        1,
        Payment.Status.SUCCEEDED,
        "",
    )
    with tenant_context(ours):
        stale = WebhookEvent.objects.get(type__endswith="failed")
    assert "already succeeded" in stale.outcome


@pytest.mark.django_db
def test_a_late_processing_event_never_undoes_a_success(restaurants, stripe_stand_in, payment):
    intent = dict(stripe_stand_in.objects[payment.payment_intent_id], status="processing")
    processing = event("payment_intent.processing", intent, account=payment.account_id)

    assert deliver(succeeded_event(stripe_stand_in, payment)).status_code == 200
    assert deliver(processing).status_code == 200

    state = order_state(restaurants[0], payment)
    assert (state["order"], state["payment"]) == (Status.PLACED, Payment.Status.SUCCEEDED)


@pytest.mark.django_db
def test_a_canceled_intent_cancels_the_unpaid_order(restaurants, stripe_stand_in, payment):
    intent = dict(stripe_stand_in.objects[payment.payment_intent_id], status="canceled")

    response = deliver(event("payment_intent.canceled", intent, account=payment.account_id))

    assert response.status_code == 200
    state = order_state(restaurants[0], payment)
    assert (state["order"], state["payment"], state["in_kitchen"]) == (
        Status.CANCELLED,
        Payment.Status.CANCELED,
        False,
    )


@pytest.mark.django_db
def test_a_success_for_a_different_amount_is_not_applied(restaurants, stripe_stand_in, payment):
    intent = dict(pay(stripe_stand_in, payment.payment_intent_id))
    intent["amount_received"] = payment.amount - 100

    response = deliver(event("payment_intent.succeeded", intent, account=payment.account_id))

    assert response.status_code == 200
    assert order_state(restaurants[0], payment)["order"] == Status.PENDING_PAYMENT
    with tenant_context(restaurants[0]):
        assert "does not match" in WebhookEvent.objects.get().outcome


# --- account.updated ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ["connect", "platform"])
def test_account_updated_sets_the_accounts_flags(restaurants, shops, endpoint):
    ours = restaurants[0]
    account_id = shops["ours"]["account"]
    created = int(time.time())
    obj = account_object(
        account_id, enabled=False, due=["external_account"], reason="requirements.past_due"
    )
    # Express accounts' events come to the Connect endpoint; the platform one names no account.
    envelope = event(
        "account.updated",
        obj,
        account=account_id if endpoint == "connect" else None,
        created=created,
    )

    response = deliver(envelope, endpoint)

    assert response.status_code == 200
    assert account_state(ours) == {**RESTRICTED, "state_as_of": created}


@pytest.mark.django_db
@pytest.mark.parametrize("arrival", ["in order", "newer first"])
def test_account_updates_in_any_order_leave_the_newest_state(restaurants, shops, arrival):
    ours = restaurants[0]
    account_id = shops["ours"]["account"]
    older = event(
        "account.updated",
        account_object(
            account_id, enabled=False, due=["external_account"], reason="requirements.past_due"
        ),
        account=account_id,
        created=1_780_000_000,
    )
    newer = event(
        "account.updated",
        account_object(account_id, enabled=True, due=[], reason=None),
        account=account_id,
        created=1_780_000_100,
    )
    sequence = [older, newer] if arrival == "in order" else [newer, older]

    assert [deliver(envelope).status_code for envelope in sequence] == [200, 200]

    assert account_state(ours) == {**ENABLED, "state_as_of": 1_780_000_100}


# --- tenant isolation --------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_event_for_one_restaurant_changes_nothing_in_the_other(
    restaurants, stripe_stand_in, shops
):
    ours, theirs = restaurants
    our_payment = card_order(ours, shops["ours"])
    their_payment = card_order(theirs, shops["theirs"])
    their_before = (order_state(theirs, their_payment), account_state(theirs))

    created = int(time.time())
    deliveries = [
        succeeded_event(stripe_stand_in, our_payment),
        event(
            "account.updated",
            account_object(shops["ours"]["account"], enabled=False, due=["x"], reason="listed"),
            account=shops["ours"]["account"],
            created=created,
        ),
    ]
    assert [deliver(envelope).status_code for envelope in deliveries] == [200, 200]

    assert order_state(ours, our_payment)["order"] == Status.PLACED
    assert account_state(ours)["disabled_reason"] == "listed"
    assert (order_state(theirs, their_payment), account_state(theirs)) == their_before


@pytest.mark.django_db
def test_an_event_naming_another_restaurants_objects_is_not_applied(
    restaurants, stripe_stand_in, shops
):
    """An event routed to one restaurant that names the other's PaymentIntent or account
    (a forged or misrouted object) finds nothing: the handler sees its own restaurant only."""
    ours, theirs = restaurants
    their_payment = card_order(theirs, shops["theirs"])
    their_before = (order_state(theirs, their_payment), account_state(theirs))
    our_account = shops["ours"]["account"]
    intent = pay(stripe_stand_in, their_payment.payment_intent_id)
    deliveries = [
        event("payment_intent.succeeded", dict(intent), account=our_account),
        event(
            "account.updated",
            account_object(shops["theirs"]["account"], enabled=False, due=["x"], reason="gone"),
            account=our_account,
        ),
    ]

    assert [deliver(envelope).status_code for envelope in deliveries] == [200, 200]

    assert (order_state(theirs, their_payment), account_state(theirs)) == their_before
    assert account_state(ours)["charges_enabled"] is True
    with tenant_context(ours):
        outcomes = set(WebhookEvent.objects.values_list("outcome", flat=True))
        routed_to = set(WebhookEvent.objects.values_list("restaurant", flat=True))
    assert outcomes == {
        "no payment of this restaurant has this PaymentIntent",
        "no connected account of this restaurant has this id",
    }
    assert routed_to == {ours.pk}
    with tenant_context(theirs):
        assert not WebhookEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_event_waits_only_briefly_for_a_locked_row(stripe_stand_in, monkeypatch):
    """While a long transaction holds the payment, its event gives up after the lock timeout
    with a 503 and Retry-After (stored, unprocessed: Stripe delivers it again) instead of
    holding a worker; the redelivery after the lock is gone applies it."""
    from payments import inbox
    from tests.factories import make_restaurant

    monkeypatch.setattr(inbox, "LOCK_TIMEOUT", "200ms")
    ours = make_restaurant("ours")
    make_restaurant("theirs")
    ids = connect_cards(ours)
    payment = card_order(ours, ids)
    locked, release = threading.Event(), threading.Event()

    def hold_the_payment() -> None:
        try:
            with tenant_context(ours):
                Payment.objects.select_for_update().get(pk=payment.pk)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_payment)
    holder.start()
    try:
        assert locked.wait(30)
        envelope = succeeded_event(stripe_stand_in, payment)
        waited = deliver(envelope)
        assert waited.status_code == 503
        assert waited.json()["code"] == "write_conflict"
        assert int(waited["Retry-After"]) >= 1
        stored = WebhookEvent.objects.get(event_id=envelope["id"])
        assert stored.processed_at is None
        assert order_state(ours, payment)["order"] == Status.PENDING_PAYMENT
    finally:
        release.set()
        holder.join(30)
    assert deliver(envelope).status_code == 200
    with tenant_context(ours):
        assert WebhookEvent.objects.get(event_id=envelope["id"]).processed_at is not None
    assert order_state(ours, payment)["order"] == Status.PLACED
