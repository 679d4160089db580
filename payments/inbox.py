"""The webhook inbox: each stored Stripe event is processed here exactly once, and an event
whose row is not here yet waits for that row and is applied when it appears.

Processing (:func:`process`). One transaction locks the stored event (``select_for_update``)
and does nothing more when it is already processed: repeated and concurrent deliveries of one
event have one effect. Otherwise the event is routed and handled, and ``processed_at`` is set
in that same transaction, so the effect and the mark commit together. Every lock is waited
for at most ``LOCK_TIMEOUT``; a longer wait raises, like a handler that raises, and rolls
back the effect with the mark.

Routing. An event for a connected account (``event.account``; ``account.*`` events on the
platform endpoint name it in their object) finds its restaurant through the database function
``nordkestrel_account_restaurant`` (payments/migrations/0004), which answers that one
question across restaurants; the handler, and the event's own update, then run inside
``tenant_context(restaurant)``: from then on the stored event is that restaurant's row, and
row-level security shows it to that restaurant only. An event not routed yet belongs to no
restaurant and is visible to the receiver. A delivery that read the event as not routed may
find it routed by another one once it has its lock: it is then out of sight, and processed in
its restaurant's context instead (:func:`process_where_visible`).

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

import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from nordkestrel import locks
from payments import gateway
from payments.handlers import Handler, NotYet, account_key, handler_for
from payments.models import WebhookEvent
from tenants.context import current_restaurant_or_none, tenant_bypass, tenant_context
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


def _restaurant_by(function: str, argument: str) -> Restaurant | None:
    """The restaurant one of the routing functions (payments/migrations/0004) names."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [argument])
        (restaurant_id,) = cursor.fetchone()
    return None if restaurant_id is None else Restaurant.objects.get(pk=restaurant_id)


def _route(account_id: str) -> Restaurant | None:
    return _restaurant_by("nordkestrel_account_restaurant", account_id)


def stored_restaurant(event_id: str) -> Restaurant | None:
    """The restaurant a stored event was routed to (None: not stored, or not routed yet)."""
    return _restaurant_by("nordkestrel_webhook_restaurant", event_id)


def as_routed(restaurant: Restaurant | None) -> contextlib.AbstractContextManager[Any]:
    """Where a stored event's row is visible: its restaurant's context once routed."""
    return tenant_context(restaurant) if restaurant is not None else contextlib.nullcontext()


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
    # Once routed, the event is its restaurant's row: written in that restaurant's context.
    with as_routed(stored.restaurant):
        stored.save(update_fields=["outcome", "waiting_for", "processed_at", "restaurant"])
    return not waiting


def process_where_visible(pk: int, event_id: str, restaurant: Restaurant | None) -> bool:
    """:func:`process`, in the context where the stored event's row is visible: that of
    ``restaurant``, the one it was routed to when the caller looked (None: not routed yet).

    Another delivery, wake-up or retry may route it meanwhile, while this one waits for the
    row's lock: the row then leaves what an unrouted event's reader sees, and is looked for
    again in its restaurant's context (where it is found processed, or still waiting)."""
    try:
        with as_routed(restaurant):
            return process(pk)
    except WebhookEvent.DoesNotExist:
        routed = None if restaurant is not None else stored_restaurant(event_id)
        if routed is None:
            raise  # gone (a refused delivery removes its event), not routed elsewhere
    with as_routed(routed):
        return process(pk)


def _process_logged(pk: int, event_id: str, restaurant: Restaurant | None) -> bool:
    """Process a waiting event outside a delivery, in the context where its row is visible:
    a failure is logged and the event keeps waiting (for the next wake-up or periodic run)."""
    try:
        return process_where_visible(pk, event_id, restaurant)
    except Exception:
        logger.exception("A waiting Stripe event could not be processed", extra={"pk": pk})
        return False


def _waiting(**filters: Any) -> QuerySet[WebhookEvent]:
    events = WebhookEvent.objects.filter(processed_at__isnull=True, **filters).exclude(
        waiting_for=""
    )
    return events.order_by("created", "received_at", "id")


def _restaurants(pending: Sequence[tuple[int, str, int | None]]) -> dict[int, Restaurant]:
    """The restaurants the listed events were routed to, by id."""
    return Restaurant.objects.in_bulk({rid for _, _, rid in pending if rid is not None})


def wake(key: str, restaurant: Restaurant | None = None) -> int:
    """The row ``key`` names has committed: apply the events waiting for it, in the order
    Stripe created them; returns how many were applied. Call it after the commit, outside
    any transaction (:func:`wake_on_commit`), with the restaurant that wrote the row: the
    events waiting for it are that restaurant's, or not routed yet."""
    with as_routed(restaurant), transaction.atomic():
        _lock_timeout()
        _meet(key)
        pending = list(_waiting(waiting_for=key).values_list("pk", "event_id", "restaurant_id"))
    restaurants = _restaurants(pending)
    return sum(
        _process_logged(pk, event_id, restaurants.get(rid) if rid is not None else None)
        for pk, event_id, rid in pending
    )


def wake_on_commit(key: str) -> None:
    """Once the current transaction (which writes the row ``key`` names) commits, apply the
    events waiting for that row. A failure there is logged, never the writer's: the
    periodic job retries."""
    transaction.on_commit(partial(wake, key, current_restaurant_or_none()), robust=True)


def retry_waiting() -> tuple[int, int]:
    """Process again the events that waited less than ``RETRY_FOR`` (oldest first, at most
    ``RETRY_BATCH``): (applied, still waiting)."""
    # Which events wait, whichever restaurant they were routed to: a read across restaurants.
    with tenant_bypass():
        pending = list(
            _waiting(received_at__gte=timezone.now() - RETRY_FOR).values_list(
                "pk", "event_id", "restaurant_id"
            )[:RETRY_BATCH]
        )
    restaurants = _restaurants(pending)
    applied = sum(
        _process_logged(pk, event_id, restaurants.get(rid) if rid is not None else None)
        for pk, event_id, rid in pending
    )
    return applied, len(pending) - applied
