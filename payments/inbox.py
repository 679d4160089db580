"""The webhook inbox: each stored Stripe event is processed here exactly once, and an event
whose row is not here yet waits for that row and is applied when it appears.

Processing (:func:`process`). One transaction locks the stored event (``select_for_update``)
and does nothing more when it is already processed: repeated and concurrent deliveries of one
event have one effect. Otherwise the event is routed and handled, and ``processed_at`` is set
in that same transaction, so the effect and the mark commit together. Every lock is waited
for at most ``LOCK_TIMEOUT``; a longer wait raises, like a handler that raises, and rolls
back the effect with the mark.

Routing. An event for a connected account (``event.account``; ``account.*`` events on the
platform endpoint name it in their object) finds its restaurant in ``AccountRoute`` through
``tenant_bypass()``, the one named bypass, used for that lookup only; the handler then runs
inside ``tenant_context(restaurant)`` and sees that restaurant's rows only.

Outcomes, noted on the stored event:

- applied: the handler's own outcome; processed.
- ``livemode`` differs from the platform's keys, no handler for the type, or an event that
  names no connected account: ignored; processed.
- its row is not here yet (an account with no route yet, or a handler that raised
  :class:`~payments.handlers.NotYet`): not applied and not processed; ``waiting_for`` names
  the row ("payment:<PaymentIntent id>", "account:<account id>").

Waiting without losing an event to a race. Stripe may announce a PaymentIntent or an account
before the transaction that records it here has committed, and that event's transaction
cannot see the row. The event and the row's writer meet on a lock named after the row
(``pg_advisory_xact_lock``):

- the event, finding nothing, takes the lock and looks again (its handler runs once more, in
  a fresh savepoint); still nothing: it is marked waiting, and its transaction ends, and the
  lock with it;
- the writer, once its row has committed (:func:`wake_on_commit`), takes the same lock, reads
  which events wait for the row, and processes each, in the order Stripe created them.

Either the event looked again after the row committed (and found it), or it was marked
waiting before the writer read the list (and is found there): never neither. Each is then
processed under its own row lock as above, so wake-ups, Stripe's redeliveries and the
periodic retry (``apply-waiting-events``, for a writer that died between its commit and its
wake-up) apply it once between them.

Why wait here rather than answer an error so that Stripe retries: Stripe's retries back off
over hours (and give up after three days, three attempts in test mode), so a paid order would
wait that long for the kitchen when its diner does not come back; and an event about a
payment that is never ours would fail for days and get the endpoint disabled. Waiting here
applies the event the moment its row commits, and one that waits in vain changes nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from nordkestrel import locks
from payments import gateway
from payments.handlers import Handler, NotYet, account_key, handler_for
from payments.models import AccountRoute, WebhookEvent
from tenants.context import tenant_bypass, tenant_context
from tenants.models import Restaurant

logger = logging.getLogger(__name__)

# The longest an event waits for a lock (a refund or a checkout holding the payment): it then
# fails, and Stripe delivers it again later (a waiting event is retried by the periodic job),
# instead of holding a worker.
LOCK_TIMEOUT = "5s"
# The periodic job retries events that waited up to this long (Stripe's own retry horizon).
RETRY_FOR = timedelta(days=3)
RETRY_BATCH = 500


def _lock_timeout() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])


def _meet(key: str) -> None:
    """Take the lock on which an event that found no row meets the row's writer (held until
    the transaction ends)."""
    locks.lock_for_transaction(locks.STRIPE_ROW_WAIT, key)


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


def _handle(handler: Handler, event: dict[str, Any], restaurant: Restaurant) -> tuple[str, str]:
    """(outcome, the row it waits for or ""). A handler that waits is run again once the
    lock for its row is held, so a row committed meanwhile is seen."""
    met: set[str] = set()
    with tenant_context(restaurant):
        while True:
            try:
                with transaction.atomic():  # a handler that waits leaves nothing behind
                    return handler(event), ""
            except NotYet as missing:
                if missing.key in met:
                    return f"waiting for {missing.what}, not recorded here yet", missing.key
                _meet(missing.key)
                met.add(missing.key)


@transaction.atomic
def process(pk: int) -> bool:
    """Process the stored event once (see above); True when it is processed, now or before,
    False when it waits for its row."""
    _lock_timeout()
    stored = WebhookEvent.objects.select_for_update(no_key=True).get(pk=pk)
    if stored.processed_at is not None:
        return True  # a repeated delivery: the first one did the work
    event: dict[str, Any] = stored.payload
    handler = handler_for(stored.type)
    waiting = ""
    if stored.livemode != gateway.livemode():
        outcome = "ignored: livemode does not match the platform's"
        logger.warning(
            "Stripe event ignored: livemode mismatch", extra={"event_id": stored.event_id}
        )
    elif handler is None:
        outcome = "ignored: no handler for this event type"
    elif not (account_id := _account_of(event)):
        outcome = "ignored: the event names no connected account"
    else:
        restaurant = _route(account_id)
        if restaurant is None:
            _meet(account_key(account_id))
            restaurant = _route(account_id)
        if restaurant is None:
            outcome = f"waiting for account {account_id}, not routed here yet"
            waiting = account_key(account_id)
        else:
            stored.restaurant = restaurant
            outcome, waiting = _handle(handler, event, restaurant)
    stored.outcome = outcome[:200]
    stored.waiting_for = waiting
    stored.processed_at = None if waiting else timezone.now()
    stored.save(update_fields=["outcome", "waiting_for", "processed_at", "restaurant"])
    return not waiting


def _process_logged(pk: int) -> bool:
    """Process a waiting event outside a delivery: a failure is logged and the event keeps
    waiting (for the next wake-up or periodic run)."""
    try:
        return process(pk)
    except Exception:
        logger.exception("A waiting Stripe event could not be processed", extra={"pk": pk})
        return False


def _waiting(**filters: Any) -> QuerySet[WebhookEvent, int]:
    events = WebhookEvent.objects.filter(processed_at__isnull=True, **filters).exclude(
        waiting_for=""
    )
    return events.order_by("created", "received_at", "id").values_list("pk", flat=True)


def wake(key: str) -> int:
    """The row ``key`` names has committed: apply the events waiting for it, in the order
    Stripe created them; returns how many were applied. Call it after the commit, outside
    any transaction (:func:`wake_on_commit`)."""
    with transaction.atomic():
        _lock_timeout()
        _meet(key)
        pending = list(_waiting(waiting_for=key))
    return sum(_process_logged(pk) for pk in pending)


def wake_on_commit(key: str) -> None:
    """Once the current transaction (which writes the row ``key`` names) commits, apply the
    events waiting for that row. A failure there is logged, never the writer's: the
    periodic job retries."""
    transaction.on_commit(partial(wake, key), robust=True)


def retry_waiting() -> tuple[int, int]:
    """Process again the events that waited less than ``RETRY_FOR`` (oldest first, at most
    ``RETRY_BATCH``): (applied, still waiting)."""
    pending = list(_waiting(received_at__gte=timezone.now() - RETRY_FOR)[:RETRY_BATCH])
    applied = sum(_process_logged(pk) for pk in pending)
    return applied, len(pending) - applied
