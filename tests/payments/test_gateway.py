"""The gateway against the Stripe stand-in: what each call sends (path, connected account,
idempotency key, fields) and what it makes of Stripe's answer."""

import json
import time

import pytest

from payments import gateway
from tests.support.stripe_server import event, pay, sign_event


def only(requests):
    assert len(requests) == 1, requests
    return requests[0]


def paid_intent(stand_in, *, account="acct_cafe", amount=2000):
    intent = gateway.create_payment_intent(
        account_id=account,
        amount=amount,
        currency="EUR",
        application_fee_amount=60,
        metadata={"order_id": "1"},
        operation_id=f"order-{amount}",
    )
    pay(stand_in, intent.id)
    return intent


# --- configuration -----------------------------------------------------------------------------


def test_not_configured_without_a_secret_key(settings):
    settings.STRIPE_SECRET_KEY = ""
    assert gateway.configured() is False
    with pytest.raises(gateway.GatewayError) as error:
        gateway.create_account(restaurant_id=1, country="", email="", operation_id="op")
    assert error.value.code == "stripe_not_configured"


def test_configured_with_a_key(stripe_stand_in):
    assert gateway.configured() is True
    assert gateway.livemode() is False


@pytest.mark.parametrize(
    ("key", "live"),
    [("sk_live_abc", True), ("rk_live_abc", True), ("sk_test_abc", False), ("", False)],
)
def test_livemode_follows_the_key(settings, key, live):
    settings.STRIPE_SECRET_KEY = key
    assert gateway.livemode() is live


# --- Connect onboarding ----------------------------------------------------------------------


def test_create_account(stripe_stand_in):
    account_id = gateway.create_account(
        restaurant_id=7, country="FI", email="owner@example.com", operation_id="7-op"
    )
    request = only(stripe_stand_in.posts("/v1/accounts"))
    assert request.path == "/v1/accounts"
    assert request.account is None  # a platform call: no connected account yet
    assert request.idempotency_key == "account-7-op"
    assert request.form == {
        "type": "express",
        "country": "FI",
        "email": "owner@example.com",
        "capabilities[card_payments][requested]": "true",
        "capabilities[transfers][requested]": "true",
        "metadata[restaurant_id]": "7",
    }
    assert account_id.startswith("acct_")
    assert stripe_stand_in.objects[account_id]["charges_enabled"] is False


def test_create_account_leaves_out_an_unknown_country_and_email(stripe_stand_in):
    gateway.create_account(restaurant_id=8, country="", email="", operation_id="8-op")
    form = only(stripe_stand_in.posts("/v1/accounts")).form
    assert "country" not in form
    assert "email" not in form


def test_the_same_operation_creates_one_account(stripe_stand_in):
    first = gateway.create_account(restaurant_id=9, country="", email="", operation_id="same")
    again = gateway.create_account(restaurant_id=9, country="", email="", operation_id="same")
    assert first == again
    assert len([o for o in stripe_stand_in.objects.values() if o["object"] == "account"]) == 1


def test_create_account_link(stripe_stand_in):
    url = gateway.create_account_link(
        account_id="acct_cafe",
        refresh_url="https://app.example/refresh",
        return_url="https://app.example/return",
        operation_id="link-1",
    )
    request = only(stripe_stand_in.posts("/v1/account_links"))
    assert request.account is None
    assert request.idempotency_key == "account-link-link-1"
    assert request.form == {
        "account": "acct_cafe",
        "refresh_url": "https://app.example/refresh",
        "return_url": "https://app.example/return",
        "type": "account_onboarding",
    }
    assert url == "https://connect.stripe.test/setup/acct_cafe"


# --- payments ------------------------------------------------------------------------------


def test_create_payment_intent_is_a_direct_charge_with_the_fee(stripe_stand_in):
    intent = gateway.create_payment_intent(
        account_id="acct_cafe",
        amount=1250,
        currency="EUR",
        application_fee_amount=45,
        metadata={"order_id": "12", "restaurant_id": "3"},
        operation_id="order-uuid",
    )
    request = only(stripe_stand_in.posts("/v1/payment_intents"))
    assert request.account == "acct_cafe"
    assert request.idempotency_key == "payment-intent-order-uuid"
    assert request.form == {
        "amount": "1250",
        "currency": "eur",
        "application_fee_amount": "45",
        "automatic_payment_methods[enabled]": "true",
        "metadata[order_id]": "12",
        "metadata[restaurant_id]": "3",
    }
    assert intent == gateway.Intent(
        id=intent.id,
        client_secret=stripe_stand_in.objects[intent.id]["client_secret"],
        status="requires_payment_method",
        amount=1250,
        currency="EUR",
        charge_id="",
        amount_received=0,
    )
    assert intent.id.startswith("pi_") and intent.client_secret.startswith(intent.id)


def test_retrieve_payment_intent(stripe_stand_in):
    created = paid_intent(stripe_stand_in, amount=900)
    intent = gateway.retrieve_payment_intent(account_id="acct_cafe", payment_intent_id=created.id)
    request = stripe_stand_in.requests[-1]
    assert (request.method, request.path) == ("GET", f"/v1/payment_intents/{created.id}")
    assert request.account == "acct_cafe"
    assert intent.status == "succeeded"
    assert intent.amount_received == 900
    assert intent.charge_id == stripe_stand_in.objects[created.id]["latest_charge"]


@pytest.mark.parametrize("charge", ["ch_1", {"id": "ch_1", "object": "charge"}, None])
def test_intent_from_an_event_payload(charge):
    obj = {
        "id": "pi_1",
        "status": "succeeded",
        "amount": 500,
        "amount_received": 500,
        "currency": "eur",
        "latest_charge": charge,
    }
    intent = gateway.intent_from(obj)
    assert intent == gateway.Intent(
        id="pi_1",
        client_secret="",
        status="succeeded",
        amount=500,
        currency="EUR",
        charge_id="ch_1" if charge else "",
        amount_received=500,
    )


def test_create_refund(stripe_stand_in):
    intent = paid_intent(stripe_stand_in)
    result = gateway.create_refund(
        account_id="acct_cafe",
        payment_intent_id=intent.id,
        amount=500,
        refund_application_fee=True,
        reason="Cold food",
        operation_id="refund-uuid",
    )
    request = only(stripe_stand_in.posts("/v1/refunds"))
    assert request.account == "acct_cafe"
    assert request.idempotency_key == "refund-refund-uuid"
    assert request.form == {
        "payment_intent": intent.id,
        "amount": "500",
        "refund_application_fee": "true",
        "metadata[reason]": "Cold food",
        "metadata[operation]": "refund-uuid",
    }
    assert result.id.startswith("re_")
    assert result.status == "succeeded"
    assert result.created == stripe_stand_in.objects[result.id]["created"]


def test_a_refund_stripe_refuses_is_a_gateway_error(stripe_stand_in):
    intent = paid_intent(stripe_stand_in, amount=1000)
    with pytest.raises(gateway.GatewayError) as error:
        gateway.create_refund(
            account_id="acct_cafe",
            payment_intent_id=intent.id,
            amount=1001,
            refund_application_fee=False,
            reason="Too much",
            operation_id="too-much",
        )
    assert error.value.status == 400
    assert error.value.code == "charge_already_refunded"
    assert "greater than unrefunded" in error.value.detail


# --- balance and payouts -----------------------------------------------------------------------


def test_retrieve_balance(stripe_stand_in):
    balance = gateway.retrieve_balance(account_id="acct_cafe")
    request = only(stripe_stand_in.requests)
    assert (request.method, request.path, request.account) == ("GET", "/v1/balance", "acct_cafe")
    assert balance["available"] == [{"amount": 12345, "currency": "eur"}]
    assert balance["pending"] == [{"amount": 2000, "currency": "eur"}]


def test_create_instant_payout_and_list_payouts(stripe_stand_in):
    payout = gateway.create_instant_payout(
        account_id="acct_cafe", amount=5000, currency="EUR", operation_id="payout-uuid"
    )
    request = only(stripe_stand_in.posts("/v1/payouts"))
    assert request.account == "acct_cafe"
    # Keyed by the account as well: one operation id can never reach another account's payout.
    assert request.idempotency_key == "payout-acct_cafe-payout-uuid"
    assert request.form == {
        "amount": "5000",
        "currency": "eur",
        "method": "instant",
        "metadata[operation]": "payout-uuid",
    }
    assert payout["id"].startswith("po_")
    assert (payout["amount"], payout["method"], payout["status"]) == (5000, "instant", "pending")

    payouts = gateway.list_payouts(account_id="acct_cafe", limit=5)
    listing = stripe_stand_in.requests[-1]
    assert (listing.method, listing.path, listing.account) == ("GET", "/v1/payouts", "acct_cafe")
    assert listing.form == {"limit": "5"}
    assert [p["id"] for p in payouts] == [payout["id"]]


def test_cancel_payment_intent(stripe_stand_in):
    intent = gateway.create_payment_intent(
        account_id="acct_cafe",
        amount=900,
        currency="EUR",
        application_fee_amount=20,
        metadata={},
        operation_id="to-cancel",
    )
    canceled = gateway.cancel_payment_intent(
        account_id="acct_cafe", payment_intent_id=intent.id, operation_id="order-1"
    )
    request = only(stripe_stand_in.posts(f"/v1/payment_intents/{intent.id}/cancel"))
    assert (request.account, request.idempotency_key) == (
        "acct_cafe",
        "payment-intent-cancel-order-1",
    )
    assert (canceled.id, canceled.status) == (intent.id, "canceled")


def test_a_paid_intent_cannot_be_cancelled(stripe_stand_in):
    intent = paid_intent(stripe_stand_in)
    with pytest.raises(gateway.GatewayError) as error:
        gateway.cancel_payment_intent(
            account_id="acct_cafe", payment_intent_id=intent.id, operation_id="late"
        )
    assert (error.value.status, error.value.code) == (400, "payment_intent_unexpected_state")
    assert not error.value.undecided


# --- errors ----------------------------------------------------------------------------------


def test_a_stripe_refusal_becomes_a_gateway_error(stripe_stand_in):
    stripe_stand_in.fail(400, "invalid_request_error", "No such account: 'acct_gone'")
    with pytest.raises(gateway.GatewayError) as error:
        gateway.create_account_link(
            account_id="acct_gone",
            refresh_url="https://app.example/refresh",
            return_url="https://app.example/return",
            operation_id="gone",
        )
    assert error.value.status == 400
    assert error.value.detail == "No such account: 'acct_gone'"
    assert len(stripe_stand_in.requests) == 1  # a refusal is not retried


def test_a_stripe_outage_is_retried_with_the_same_key_then_a_gateway_error(stripe_stand_in):
    for _ in range(3):  # the first attempt and both retries
        stripe_stand_in.fail(500, "api_error", "Stripe is down.")
    with pytest.raises(gateway.GatewayError) as error:
        gateway.create_account(restaurant_id=1, country="", email="", operation_id="down")
    assert error.value.status == 500
    assert error.value.code == "stripe_error"
    keys = [r.idempotency_key for r in stripe_stand_in.posts("/v1/accounts")]
    assert keys == ["account-down"] * 3  # a retry can never create a second account
    assert not stripe_stand_in.objects


def test_a_slow_answer_times_out_and_is_retried_with_the_same_key(stripe_stand_in, monkeypatch):
    """Stripe acts but its answers never arrive in time: each attempt gives up after the
    client's timeout (not the SDK's 80 s), two retries reuse the key, and the error says that
    Stripe's decision is unknown."""
    monkeypatch.setattr(gateway, "TIMEOUT", (1.0, 0.2))
    stripe_stand_in.stall_next.extend([2.0, 2.0, 2.0])
    with pytest.raises(gateway.GatewayError) as error:
        gateway.create_account(restaurant_id=1, country="", email="", operation_id="slow")
    assert error.value.status is None
    assert error.value.undecided
    keys = [r.idempotency_key for r in stripe_stand_in.posts("/v1/accounts")]
    assert keys == ["account-slow"] * (1 + gateway.MAX_RETRIES)
    assert len(stripe_stand_in.objects) == 1  # made once, though no answer came back


def test_a_key_reused_with_other_parameters_is_refused(stripe_stand_in):
    """The stand-in binds a key to its first request, as Stripe does (400 idempotency_error),
    so a test cannot pass by reusing a key for a different request."""
    gateway.create_account(restaurant_id=1, country="", email="", operation_id="same")
    with pytest.raises(gateway.GatewayError) as error:
        gateway.create_account(restaurant_id=2, country="", email="", operation_id="same")
    assert error.value.status == 400
    assert "same parameters" in error.value.detail


def test_one_failed_attempt_is_retried_and_succeeds(stripe_stand_in):
    stripe_stand_in.fail(500, "api_error", "Stripe hiccup.")
    account_id = gateway.create_account(
        restaurant_id=1, country="", email="", operation_id="hiccup"
    )
    assert len(stripe_stand_in.posts("/v1/accounts")) == 2
    assert list(stripe_stand_in.objects) == [account_id]


# --- webhooks ----------------------------------------------------------------------------------

SECRET = "whsec_platform_test"


def signed(payload: bytes, **kwargs):
    return sign_event(payload, SECRET, **kwargs)


def envelope() -> bytes:
    return json.dumps(event("account.updated", {"id": "acct_cafe"}, account="acct_cafe")).encode()


def test_verify_event_with_a_valid_signature(stripe_stand_in):
    payload = envelope()
    verified = gateway.verify_event(payload, signed(payload), secret=SECRET)
    assert verified == json.loads(payload)


BAD_SIGNATURES = {
    "another body": lambda payload: sign_event(b"{}", SECRET),
    "another secret": lambda payload: sign_event(payload, "whsec_other"),
    "a forged digest": lambda payload: f"t={int(time.time())},v1={'0' * 64}",
    "no digest": lambda payload: f"t={int(time.time())}",
    "garbage": lambda payload: "garbage",
    "empty": lambda payload: "",
    "missing": lambda payload: None,
}


@pytest.mark.parametrize("make", BAD_SIGNATURES.values(), ids=BAD_SIGNATURES.keys())
def test_verify_event_refuses_a_bad_signature(stripe_stand_in, make):
    payload = envelope()
    with pytest.raises(gateway.SignatureError):
        gateway.verify_event(payload, make(payload), secret=SECRET)


def test_verify_event_refuses_an_altered_body(stripe_stand_in):
    payload = envelope()
    signature = signed(payload)
    altered = payload.replace(b"account.updated", b"account.updatex")
    with pytest.raises(gateway.SignatureError):
        gateway.verify_event(altered, signature, secret=SECRET)


def test_verify_event_refuses_a_stale_timestamp(stripe_stand_in):
    payload = envelope()
    stale = signed(payload, timestamp=int(time.time()) - 301 - 60)
    with pytest.raises(gateway.SignatureError):
        gateway.verify_event(payload, stale, secret=SECRET)


def test_verify_event_needs_a_secret():
    payload = envelope()
    with pytest.raises(gateway.SignatureError):
        gateway.verify_event(payload, sign_event(payload, ""), secret="")
