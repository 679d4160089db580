"""Stripe webhooks: two endpoints; every event is stored once and processed exactly once.

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
3. It is processed by ``payments.inbox`` (routing, exactly-once, and events whose row is not
   recorded here yet, which wait for it).

The answer is 200 when the event was processed (applied or ignored), and also when it waits
for its row: it is kept, and applied here when the row appears, so Stripe need not send it
again. A handler that raises (or a lock waited for too long) rolls back its effect with the
mark: the event stays unprocessed, the failure is logged with the event id, and the answer is
a 500 with no detail, so Stripe retries the delivery (for up to three days) and the retry
processes it. A handler that finds the event's object malformed (``gateway.MalformedEvent``:
a PaymentIntent without its amount) rolls back, the stored event is removed and the answer
is a 400: no retry could apply it. A lock waited for too long answers 503 ``write_conflict``,
and a database that is down or too slow 503 ``database_unavailable``, with ``Retry-After``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from nordkestrel.errors import error_body
from nordkestrel.outage import unavailable
from nordkestrel.text import storable
from payments import gateway, inbox
from payments.handlers import handler_for
from payments.models import WebhookEvent
from tenants.models import Restaurant

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


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
        stored, restaurant = _store(event["id"], endpoint, fields)
    except DataError:
        # A string PostgreSQL cannot hold (a NUL character) or a number out of range.
        return _error(400, "invalid_event", "The payload is not a Stripe event.")
    try:
        inbox.process_where_visible(stored.pk, stored.event_id, restaurant)
    except gateway.MalformedEvent as malformed:
        # Signed, but its object is not what its type says: no retry can apply it, so it is
        # refused and not kept (a later, corrected delivery of the same id is stored anew).
        logger.warning(
            "Stripe event refused: its object is malformed",
            extra={"event_id": stored.event_id, "event_type": stored.type},
        )
        with inbox.as_routed(inbox.stored_restaurant(stored.event_id)):
            WebhookEvent.objects.filter(pk=stored.pk, processed_at__isnull=True).delete()
        return _error(malformed.status, malformed.code, malformed.detail)
    except Exception as error:
        logger.exception(
            "Stripe event not processed; Stripe will retry it",
            extra={"event_id": stored.event_id, "event_type": stored.type},
        )
        with (
            contextlib.suppress(DatabaseError),
            inbox.as_routed(inbox.stored_restaurant(stored.event_id)),
        ):
            WebhookEvent.objects.filter(pk=stored.pk, processed_at__isnull=True).update(
                outcome="failed: the handler raised; waiting for Stripe's retry"
            )
        if (answer := unavailable(error)) is not None:
            return JsonResponse(
                error_body(503, answer.code, answer.detail), status=503, headers=answer.headers
            )
        return _error(500, "webhook_failed", "The event could not be processed now.")
    return _received()


def _get_or_create(
    event_id: str, endpoint: str, fields: dict[str, Any], restaurant: Restaurant | None
) -> WebhookEvent:
    with inbox.as_routed(restaurant):
        stored, _ = WebhookEvent.objects.get_or_create(
            event_id=event_id, defaults={"endpoint": endpoint, **fields}
        )
    return stored


def _store(
    event_id: str, endpoint: str, fields: dict[str, Any]
) -> tuple[WebhookEvent, Restaurant | None]:
    """The event's stored row, stored now unless an earlier delivery did, and the restaurant
    it is routed to (None: not yet). A redelivery of an event already routed finds its row
    in that restaurant's context. A concurrent delivery that stored the event first (the
    insert here then fails on the unique id) may have routed it already, out of sight of a
    reader with no restaurant: it is looked for once more where it now is."""
    restaurant = inbox.stored_restaurant(event_id)
    try:
        return _get_or_create(event_id, endpoint, fields, restaurant), restaurant
    except IntegrityError:
        routed = None if restaurant is not None else inbox.stored_restaurant(event_id)
        if routed is None:
            raise
    return _get_or_create(event_id, endpoint, fields, routed), routed


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
