"""A stand-in for Stripe's API on loopback, for the real ``stripe`` SDK to talk to.

It implements the endpoints the gateway uses, answers in Stripe's object shapes, keeps the
objects it created, honours ``Idempotency-Key`` (the same key replays the first answer) and
records every request (method, path, headers, form fields) for tests to assert on.
``sign_event`` signs webhook payloads with Stripe's scheme (``t=<ts>,v1=<hmac>``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):08d}{int(time.time() * 1000) % 100000:05d}"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]

    @property
    def account(self) -> str | None:
        return self.headers.get("stripe-account")

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class StripeStandIn:
    api_key: str = "sk_test_standin"
    requests: list[Recorded] = field(default_factory=list)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (method, idempotency key) -> (status, body, what was asked: path, account, form).
    replies: dict[tuple[str, str], tuple[int, dict[str, Any], tuple[Any, ...]]] = field(
        default_factory=dict
    )
    fail_next: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    # Seconds the next requests wait before answering, after acting (an answer that is late
    # or lost: the client times out although Stripe did the work).
    stall_next: list[float] = field(default_factory=list)
    url: str = ""
    # While true, every request is dropped unanswered (Stripe cannot be reached).
    unreachable: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The connected account's balance (GET /v1/balance): amounts by kind, e.g.
    # {"available": [{"amount": 100, "currency": "eur"}], ...}; tests may replace it.
    balance: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {
            "available": [{"amount": 12345, "currency": "eur"}],
            "pending": [{"amount": 2000, "currency": "eur"}],
            "instant_available": [{"amount": 12345, "currency": "eur"}],
        }
    )

    def posts(self, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path.startswith(path_prefix)]

    def fail(
        self, status: int, error_type: str = "api_error", message: str = "Stripe failed."
    ) -> None:
        self.fail_next.append((status, {"error": {"type": error_type, "message": message}}))

    def set(self, object_id: str, **changes: Any) -> dict[str, Any]:
        with self.lock:
            self.objects[object_id].update(changes)
            return self.objects[object_id]

    # --- endpoint behaviour -------------------------------------------------------------

    def handle(self, method: str, path: str, form: dict[str, str], account: str | None):
        parts = [p for p in path.split("/") if p][1:]  # drop "v1"
        if method == "POST" and parts == ["accounts"]:
            return 200, self._store(
                {
                    "id": new_id("acct"),
                    "object": "account",
                    "type": form.get("type", "express"),
                    "country": form.get("country", "US"),
                    "email": form.get("email"),
                    "details_submitted": False,
                    "charges_enabled": False,
                    "payouts_enabled": False,
                    "requirements": {
                        "currently_due": ["external_account"],
                        "disabled_reason": None,
                    },
                    "metadata": _nested(form, "metadata"),
                }
            )
        if method == "GET" and len(parts) == 2 and parts[0] == "accounts":
            return self._get(parts[1])
        if method == "DELETE" and len(parts) == 2 and parts[0] == "accounts":
            with self.lock:
                deleted = self.objects.pop(parts[1], None)
            if deleted is None:
                return 404, _error("invalid_request_error", f"No such account: '{parts[1]}'")
            return 200, {"id": parts[1], "object": "account", "deleted": True}
        if method == "POST" and parts == ["account_links"]:
            return 200, {
                "object": "account_link",
                "url": f"https://connect.stripe.test/setup/{form.get('account')}",
                "created": int(time.time()),
                "expires_at": int(time.time()) + 300,
            }
        if method == "POST" and parts == ["payment_intents"]:
            amount = int(form["amount"])
            intent_id = new_id("pi")
            return 200, self._store(
                {
                    "id": intent_id,
                    "object": "payment_intent",
                    "amount": amount,
                    "amount_received": 0,
                    "currency": form["currency"],
                    "application_fee_amount": int(form.get("application_fee_amount", 0)),
                    "client_secret": f"{intent_id}_secret_{new_id('s')}",
                    "status": "requires_payment_method",
                    "latest_charge": None,
                    "metadata": _nested(form, "metadata"),
                    "livemode": False,
                    "on_behalf_of": None,
                    "stripe_account": account,
                }
            )
        if method == "GET" and len(parts) == 2 and parts[0] == "payment_intents":
            intent = self._intent(parts[1], account)
            if intent is None:
                return 404, _error("invalid_request_error", "No such payment_intent.")
            return 200, intent
        if method == "POST" and len(parts) == 3 and parts[::2] == ["payment_intents", "cancel"]:
            intent = self._intent(parts[1], account)
            if intent is None:
                return 404, _error("invalid_request_error", "No such payment_intent.")
            if intent["status"] in ("succeeded", "canceled", "processing"):
                return 400, _error(
                    "invalid_request_error",
                    "You cannot cancel this PaymentIntent because it has a status of "
                    f"{intent['status']}.",
                    code="payment_intent_unexpected_state",
                )
            return 200, self.set(
                parts[1], status="canceled", cancellation_reason="requested_by_customer"
            )
        if method == "POST" and parts == ["refunds"]:
            intent = self.objects.get(form.get("payment_intent", ""))
            if intent is None:
                return 404, _error("invalid_request_error", "No such payment_intent.")
            amount = int(form.get("amount", intent["amount"]))
            refunded = intent.get("amount_refunded", 0)
            if amount + refunded > intent["amount_received"]:
                return 400, _error(
                    "invalid_request_error",
                    "Refund amount is greater than unrefunded amount on charge.",
                    code="charge_already_refunded",
                )
            intent["amount_refunded"] = refunded + amount
            return 200, self._store(
                {
                    "id": new_id("re"),
                    "object": "refund",
                    "amount": amount,
                    "payment_intent": intent["id"],
                    "charge": intent.get("latest_charge"),
                    "status": "succeeded",
                    "metadata": _nested(form, "metadata"),
                }
            )
        if method == "GET" and parts == ["balance"]:
            return 200, {"object": "balance", **self.balance, "livemode": False}
        if method == "GET" and parts == ["payouts"]:
            payouts = [o for o in self.objects.values() if o.get("object") == "payout"]
            return 200, {"object": "list", "data": payouts, "has_more": False, "url": "/v1/payouts"}
        if method == "POST" and parts == ["payouts"]:
            amount = int(form["amount"])
            # As Stripe's: the paid-out amount leaves the balance at once.
            kinds = (
                ["available", "instant_available"]
                if form.get("method") == "instant"
                else ["available"]
            )
            with self.lock:
                for kind in kinds:
                    for entry in self.balance.get(kind, []):
                        if entry["currency"] == form["currency"]:
                            entry["amount"] -= amount
            return 200, self._store(
                {
                    "id": new_id("po"),
                    "object": "payout",
                    "amount": amount,
                    "currency": form["currency"],
                    "method": form.get("method", "standard"),
                    "status": "pending",
                    "arrival_date": int(time.time()) + 1800,
                    "created": int(time.time()),
                    "metadata": _nested(form, "metadata"),
                }
            )
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method} {path}).")

    def _intent(self, intent_id: str, account: str | None) -> dict[str, Any] | None:
        """A PaymentIntent, as the account it was made on sees it (a direct charge is not
        found without its ``Stripe-Account``)."""
        intent = self.objects.get(intent_id)
        if intent is None or intent.get("object") != "payment_intent":
            return None
        return intent if intent.get("stripe_account") == account else None

    def _store(self, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            obj.setdefault("created", int(time.time()))
            self.objects[obj["id"]] = obj
        return obj

    def _get(self, object_id: str) -> tuple[int, dict[str, Any]]:
        obj = self.objects.get(object_id)
        if obj is None:
            return 404, _error("invalid_request_error", f"No such object: '{object_id}'")
        return 200, obj


def _error(error_type: str, message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message, "code": code}}


def _nested(form: dict[str, str], prefix: str) -> dict[str, str]:
    start = f"{prefix}["
    return {
        k[len(start) : -1]: v for k, v in form.items() if k.startswith(start) and k.endswith("]")
    }


def _handler(stand_in: StripeStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            url = urlsplit(self.path)
            form = dict(parse_qsl(raw or url.query, keep_blank_values=True))
            headers = {k.lower(): v for k, v in self.headers.items()}
            stand_in.requests.append(Recorded(method, url.path, headers, form))
            if stand_in.unreachable:
                self.close_connection = True
                return  # no answer at all: the client sees the connection drop
            if headers.get("authorization") != f"Bearer {stand_in.api_key}":
                status, body = 401, _error("invalid_request_error", "Invalid API Key provided.")
            elif stand_in.fail_next:
                status, body = stand_in.fail_next.pop(0)
            else:
                key = headers.get("idempotency-key")
                asked = (url.path, headers.get("stripe-account"), form)
                replay = stand_in.replies.get((method, key)) if key and method == "POST" else None
                if replay is not None and replay[2] != asked:
                    # As Stripe does: a key is bound to its first request's parameters.
                    status, body = (
                        400,
                        _error(
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with.",
                        ),
                    )
                elif replay is not None:
                    status, body, _ = replay
                else:
                    status, body = stand_in.handle(
                        method, url.path, form, headers.get("stripe-account")
                    )
                    if key and method == "POST":
                        stand_in.replies[(method, key)] = (status, body, asked)
            if stand_in.stall_next:
                time.sleep(stand_in.stall_next.pop(0))
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", new_id("req"))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a stalled answer)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

    return Handler


def start(stand_in: StripeStandIn) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stand_in))
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def sign_event(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header for ``payload``, as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event(
    event_type: str,
    obj: dict[str, Any],
    *,
    account: str | None = None,
    livemode: bool = False,
    created: int | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A Stripe event envelope around ``obj``."""
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "api_version": "2025-01-27.acacia",
        "type": event_type,
        "account": account,
        "livemode": livemode,
        "created": int(time.time()) if created is None else created,
        "data": {"object": obj},
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
    }


def pay(stand_in: StripeStandIn, payment_intent_id: str) -> dict[str, Any]:
    """What happens when the diner's card goes through: the intent succeeds with a charge."""
    intent = stand_in.objects[payment_intent_id]
    return stand_in.set(
        payment_intent_id,
        status="succeeded",
        amount_received=intent["amount"],
        latest_charge=intent.get("latest_charge") or new_id("ch"),
    )
