"""Stripe webhooks: two endpoints, every event stored once and processed exactly once.

A delivery goes through these steps:

1. ``POST`` only (405), a body of at most 1 MB (413; Stripe's events are a few kB), and the
   signature checked over the raw body with the endpoint's own secret (the platform's or the
   Connect one) and a 300 s tolerance. A bad signature, a stale timestamp, an altered body, a
   missing header or a body that is not an event answers 400 and stores nothing. The body is
   parsed by ``nordkestrel.safejson``, never by the SDK: correctly signed JSON nested deeper
   than 64 levels, ``NaN`` or a number too long to read is a 400 too, as is an event without
   its id, or of a handled type whose object has no id.
2. The event is stored in its own transaction (``WebhookEvent.event_id`` is unique; a
   duplicate, even one racing the first delivery, finds the stored row), so it is kept
   whatever happens to its processing.
3. One transaction locks the stored row (``select_for_update``) and does nothing more when it
   is already processed: repeated and concurrent deliveries of one event have one effect.
   Otherwise the event is routed and handled, and ``processed_at`` is set in that same
   transaction, so the effect and the mark commit together.

Routing. An event for a connected account (``event.account``; ``account.*`` events on the
platform endpoint name it in their object) finds its restaurant in ``AccountRoute`` through
``tenant_bypass()``, the one named bypass, used for that lookup only; the handler then runs
inside ``tenant_context(restaurant)`` and sees that restaurant's rows only.

Outcomes, each noted on the stored event and acknowledged with 200:

- handled: the handler's own outcome; processed.
- ``livemode`` differs from the platform's keys: ignored; processed.
- no handler for the type, or an event that names no connected account: ignored; processed.
- an account we have no route for: left unprocessed, so that a delivery after the account
  is routed (Stripe's resend) still applies it.

A handler that finds the event's object malformed (``gateway.MalformedEvent``: a
PaymentIntent without its amount) rolls back, the stored event is removed and the answer is
a 400: no retry could apply it.

A handler that raises anything else rolls back its effect with the mark: the event stays
unprocessed, the failure is logged with the event id, and the answer is a 500 with no
detail, so Stripe retries the delivery (for up to three days) and the retry processes it.
Processing waits at most ``LOCK_TIMEOUT`` for a row lock (``lock_timeout`` for its
transaction); a longer wait fails the same way.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError, DataError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from nordkestrel.errors import error_body
from nordkestrel.text import storable
from payments import gateway
from payments.handlers import handler_for
from payments.models import AccountRoute, WebhookEvent
from tenants.context import tenant_bypass, tenant_context
from tenants.models import Restaurant

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
# The longest an event waits for a row lock (a refund or a checkout holding the payment): it
# then fails with a 500 and Stripe delivers it again later, instead of holding a worker.
LOCK_TIMEOUT = "5s"


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse(error_body(status, code, detail), status=status)


def _received() -> JsonResponse:
    return JsonResponse({"received": True})


@csrf_exempt
def platform_webhook(request: HttpRequest) -> HttpResponse:
    return receive(request, WebhookEvent.Endpoint.PLATFORM, settings.STRIPE_WEBHOOK_SECRET)


@csrf_exempt
def connect_webhook(request: HttpRequest) -> HttpResponse:
    return receive(request, WebhookEvent.Endpoint.CONNECT, settings.STRIPE_CONNECT_WEBHOOK_SECRET)


def receive(request: HttpRequest, endpoint: str, secret: str) -> HttpResponse:
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "Webhooks are delivered with POST.")
        response["Allow"] = "POST"
        return response
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "invalid_request", "The Content-Length header is not a number.")
    # Checked before the body is read, so an oversized body is never held in memory.
    if declared > MAX_BODY_BYTES:
        return _error(413, "payload_too_large", "The payload is too large for a Stripe event.")
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        return _error(413, "payload_too_large", "The payload is too large for a Stripe event.")
    try:
        event = gateway.verify_event(body, request.headers.get("Stripe-Signature"), secret=secret)
    except gateway.SignatureError:
        return _error(
            400, "invalid_signature", "The signature, timestamp or payload does not check out."
        )
    except gateway.MalformedEvent as malformed:
        return _error(malformed.status, malformed.code, malformed.detail)
    fields = _stored_fields(event)
    if fields is None:
        return _error(400, "invalid_event", "The payload is not a Stripe event.")
    try:
        stored, _ = WebhookEvent.objects.get_or_create(
            event_id=event["id"], defaults={"endpoint": endpoint, **fields}
        )
    except DataError:
        # A string PostgreSQL cannot hold (a NUL character) or a number out of range.
        return _error(400, "invalid_event", "The payload is not a Stripe event.")
    try:
        _process(stored.pk)
    except gateway.MalformedEvent as malformed:
        # Signed, but its object is not what its type says: no retry can apply it, so it is
        # refused and not kept (a later, corrected delivery of the same id is stored anew).
        logger.warning(
            "Stripe event refused: its object is malformed",
            extra={"event_id": stored.event_id, "event_type": stored.type},
        )
        WebhookEvent.objects.filter(pk=stored.pk, processed_at__isnull=True).delete()
        return _error(malformed.status, malformed.code, malformed.detail)
    except Exception:
        logger.exception(
            "Stripe event not processed; Stripe will retry it",
            extra={"event_id": stored.event_id, "event_type": stored.type},
        )
        with contextlib.suppress(DatabaseError):
            WebhookEvent.objects.filter(pk=stored.pk, processed_at__isnull=True).update(
                outcome="failed: the handler raised; waiting for Stripe's retry"
            )
        return _error(500, "webhook_failed", "The event could not be processed now.")
    return _received()


def _stored_fields(event: dict[str, Any]) -> dict[str, Any] | None:
    """The columns of a well-formed event, or None when it is not one."""
    event_id, event_type = event.get("id"), event.get("type")
    account, created = event.get("account"), event.get("created")
    livemode, data = event.get("livemode"), event.get("data")
    if not (isinstance(event_id, str) and 0 < len(event_id) <= 64):
        return None
    if not (isinstance(event_type, str) and 0 < len(event_type) <= 100):
        return None
    if not (account is None or (isinstance(account, str) and len(account) <= 64)):
        return None
    if not isinstance(created, int) or isinstance(created, bool) or not isinstance(livemode, bool):
        return None
    if not (isinstance(data, dict) and isinstance(data.get("object"), dict)):
        return None
    object_id = data["object"].get("id")
    if handler_for(event_type) is not None and not (
        isinstance(object_id, str) and 0 < len(object_id) <= 255
    ):
        return None  # every object a handler reads (intent, charge, refund, ...) has an id
    if not _storable(event):
        return None
    return {
        "type": event_type,
        "account_id": account or "",
        "livemode": livemode,
        "created": created,
        "payload": event,
    }


def _storable(event: dict[str, Any]) -> bool:
    """Every string in the event (keys too) is text PostgreSQL can hold: no NUL, no lone
    surrogate. Handlers store parts of it, so it is checked once, at the door."""
    pending: list[Any] = [event]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if not storable(value):
                return False
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return True


def _account_of(event: dict[str, Any]) -> str:
    """The connected account an event concerns ("" when none)."""
    account = event.get("account")
    if isinstance(account, str) and account:
        return account
    obj = event["data"]["object"]
    if str(event["type"]).startswith("account.") and obj.get("object") == "account":
        return str(obj.get("id") or "")
    return ""


def _route(account_id: str) -> Restaurant | None:
    with tenant_bypass():
        route = (
            AccountRoute.objects.select_related("restaurant").filter(account_id=account_id).first()
        )
    return route.restaurant if route is not None else None


@transaction.atomic
def _process(pk: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
    stored = WebhookEvent.objects.select_for_update().get(pk=pk)
    if stored.processed_at is not None:
        return  # a repeated delivery: the first one did the work
    event: dict[str, Any] = stored.payload
    processed = True
    handler = handler_for(stored.type)
    if stored.livemode != gateway.livemode():
        outcome = "ignored: livemode does not match the platform's"
        logger.warning(
            "Stripe event ignored: livemode mismatch", extra={"event_id": stored.event_id}
        )
    elif handler is None:
        outcome = "ignored: no handler for this event type"
    elif not (account_id := _account_of(event)):
        outcome = "ignored: the event names no connected account"
    elif (restaurant := _route(account_id)) is None:
        outcome = f"unknown account {account_id}: not applied"
        processed = False
    else:
        stored.restaurant = restaurant
        with tenant_context(restaurant):
            outcome = handler(event)
    stored.outcome = outcome[:200]
    stored.processed_at = timezone.now() if processed else None
    stored.save(update_fields=["outcome", "processed_at", "restaurant"])
