"""The sender: ``manage.py run_webhooks`` claims due deliveries and sends them, many at once,
beside the task queue (no task worker waits on a webhook).

- **Claims** are leases (``locked_until``): a sender that dies lets go when its leases end,
  and several senders can run at once. A claim takes, for each enabled endpoint, its oldest
  due deliveries up to the per-endpoint limit (``WEBHOOK_ENDPOINT_CONCURRENCY``, counting
  those already in flight anywhere), then orders them turn by turn across restaurants (every
  restaurant's first before any restaurant's second), up to the free slots. A slow or dead
  endpoint so holds at most its own few slots, and one busy restaurant cannot crowd out the
  others.
- **Sending** is asyncio: a request that waits 15 s for an answer costs a coroutine, not a
  worker. The database work (claims, the log) runs on one thread of its own.
- **Waking**: the fan-out's ``NOTIFY`` wakes the sender at once; an idle claim also says when
  the next retry (or lease) falls due, and the sender looks again then, at least once a
  minute. Without its notification connection it looks every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections
from django.utils import timezone

from events.models import Event
from nordkestrel import events
from nordkestrel.dbrouting import current_connection
from nordkestrel.errors import InvalidInput
from tenants.context import tenant_bypass
from webhooks import addresses, messages, transport
from webhooks.fanout import CHANNEL
from webhooks.log import record
from webhooks.models import Delivery, Endpoint

logger = logging.getLogger(__name__)

# A claim is held this long: longer than any request may take.
LEASE = timedelta(seconds=transport.TOTAL_TIMEOUT * 4)
POLL_SECONDS = 1.0
# The longest the sender waits between looks while notifications wake it.
IDLE_SECONDS = 60.0
T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    """A claimed delivery, with what its request needs."""

    delivery_id: int
    restaurant_id: int
    endpoint_id: int
    message_id: str
    url: str
    keys: list[str] = field(repr=False)
    payload: bytes | None  # None: nothing can be sent (``problem`` says why)
    problem: str = ""
    manual: bool = False


def _claim_sql() -> str:
    deliveries, endpoints = Delivery._meta.db_table, Endpoint._meta.db_table
    return f"""
    WITH candidates AS (
        SELECT d.id, d.restaurant_id, d.next_attempt_at, d.locked_until,
               row_number() OVER (
                   PARTITION BY d.restaurant_id ORDER BY d.next_attempt_at, d.id
               ) AS turn
          FROM {endpoints} e
         CROSS JOIN LATERAL (
               -- The endpoint's oldest due deliveries: those in flight come first (they
               -- were claimed in this order), so only the limit's free places are taken.
               SELECT id, restaurant_id, next_attempt_at, locked_until
                 FROM {deliveries} d
                WHERE d.restaurant_id = e.restaurant_id AND d.endpoint_id = e.id
                  AND d.next_attempt_at <= %(now)s
                  -- A disabled endpoint is sent only the test messages asked for.
                  AND (e.enabled OR d.test_payload IS NOT NULL)
                ORDER BY d.next_attempt_at, d.id
                LIMIT %(per_endpoint)s
         ) d
    ), picked AS (
        SELECT id FROM candidates
         WHERE locked_until IS NULL OR locked_until < %(now)s
         ORDER BY turn, next_attempt_at, id
         LIMIT %(slots)s
    )
    UPDATE {deliveries} d SET locked_until = %(lease)s
      FROM picked
     WHERE d.id = picked.id AND d.next_attempt_at <= %(now)s
       AND (d.locked_until IS NULL OR d.locked_until < %(now)s)
    RETURNING d.id
    """  # noqa: S608 - the table names are the models', every value a parameter


def _next_due_sql() -> str:
    deliveries = Delivery._meta.db_table
    # A delivery in flight falls due again when its lease ends (its sender may have died).
    return f"""
    SELECT min(GREATEST(next_attempt_at, COALESCE(locked_until, next_attempt_at)))
      FROM {deliveries}
     WHERE next_attempt_at IS NOT NULL
       AND GREATEST(next_attempt_at, COALESCE(locked_until, next_attempt_at)) > %s
    """  # noqa: S608 - the table name is the model's, the value a parameter


@dataclass(frozen=True)
class Claimed:
    jobs: list[Job]
    # When the next delivery not claimed now falls due (None: none is owed); asked for only
    # when fewer than the slots were taken.
    next_due: datetime | None = None


# No claim made (no free slot, or the claim failed): look again at the poll interval.
NOTHING = Claimed([])


def claim_due(slots: int, now: datetime | None = None) -> Claimed:
    """Lease up to ``slots`` due deliveries (across restaurants: the platform's one read
    across them), load what their requests need, and say when the next one falls due."""
    now = now or timezone.now()
    with tenant_bypass():
        with current_connection().cursor() as cursor:
            cursor.execute(
                _claim_sql(),
                {
                    "now": now,
                    "lease": now + LEASE,
                    "slots": slots,
                    "per_endpoint": settings.WEBHOOK_ENDPOINT_CONCURRENCY,
                },
            )
            ids = [row[0] for row in cursor.fetchall()]
            next_due = None
            if len(ids) < slots:
                cursor.execute(_next_due_sql(), [now])
                next_due = cursor.fetchone()[0]
        if not ids:
            return Claimed([], next_due)
        rows = list(Delivery.unscoped.filter(pk__in=ids).select_related("endpoint").order_by("id"))
        event_rows = _events({row.event_id for row in rows if row.event_id is not None})
    return Claimed([_job(row, event_rows.get(row.event_id), now) for row in rows], next_due)


def claim(slots: int, now: datetime | None = None) -> list[Job]:
    """The deliveries :func:`claim_due` leases."""
    return claim_due(slots, now).jobs


def _events(ids: set[Any]) -> dict[Any, events.Event]:
    return {row.pk: row.as_event() for row in Event.unscoped.filter(pk__in=list(ids))}


def _job(row: Delivery, event: events.Event | None, now: datetime) -> Job:
    endpoint = row.endpoint
    keys = messages.signing_keys(
        endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_expires_at, now
    )
    payload, problem = None, ""
    if row.test_payload is not None:
        payload = messages.body(row.event_type, row.created_at, row.test_payload)
    elif event is None:
        problem = "The event is no longer kept (events are kept 30 days)."
    else:
        data = events.visible_payload(event, frozenset(endpoint.scopes))
        if data is None:
            problem = "The endpoint's scopes no longer include this event."
        else:
            payload = messages.body(event.type, event.occurred_at, data)
    return Job(
        delivery_id=row.pk,
        restaurant_id=row.restaurant_id,
        endpoint_id=row.endpoint_id,
        message_id=row.message_id,
        url=endpoint.url,
        keys=keys,
        payload=payload,
        problem=problem,
        manual=row.manual,
    )


async def send(job: Job) -> transport.Answer:
    """One attempt: the checks of the URL and its addresses (again, now), then the request."""
    if job.payload is None:
        return transport.Answer(None, "", job.problem, 0)
    try:
        target = addresses.parse(job.url)
        found = await asyncio.wait_for(
            asyncio.to_thread(addresses.resolve, target), transport.CONNECT_TIMEOUT
        )
    except InvalidInput as refused:
        return transport.Answer(None, "", f"URL refused: {refused.detail}", 0)
    except addresses.RefusedAddress as refused:
        return transport.Answer(None, "", f"Address refused: {refused}"[:500], 0)
    except TimeoutError:
        return transport.Answer(None, "", "the host name did not resolve in time", 0)
    headers = messages.signature_headers(job.message_id, timezone.now(), job.payload, job.keys)
    return await transport.post(target, found, headers, job.payload)


class Sender:
    def __init__(self, *, concurrency: int | None = None, poll_seconds: float = POLL_SECONDS):
        self.concurrency = concurrency or settings.WEBHOOK_CONCURRENCY
        self.poll_seconds = poll_seconds
        self._db = ThreadPoolExecutor(1, thread_name_prefix="webhooks-db")
        self._running: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._listening = False
        self.sent = 0

    async def _in_db(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, function, *args)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self, *, until_idle: bool = False) -> int:
        """Send until stopped (or, with ``until_idle``, until nothing is due or in flight);
        the number of attempts made."""
        listener = None if until_idle else asyncio.create_task(self._listen())
        try:
            while not self._stopping:
                self._wake.clear()
                claimed = await self._claim()
                jobs = claimed.jobs
                for job in jobs:
                    task = asyncio.create_task(self._deliver(job))
                    self._running.add(task)
                    task.add_done_callback(self._finished)
                if until_idle and not jobs and not self._running:
                    break
                if jobs and len(self._running) < self.concurrency:
                    continue  # more may be due
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_wait(claimed))
            if self._running:
                await asyncio.wait(self._running, timeout=transport.TOTAL_TIMEOUT + 5)
        finally:
            if listener is not None:
                listener.cancel()
            await self._in_db(connections.close_all)
            self._db.shutdown(wait=True)
        return self.sent

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()

    def _idle_wait(self, claimed: Claimed) -> float:
        """How long to wait for a notification before looking again: until the next retry
        falls due, at most a minute, while notifications arrive; the poll interval without
        them (the listener down, or no listener)."""
        if not self._listening or claimed is NOTHING:
            return self.poll_seconds
        if claimed.next_due is None:
            return IDLE_SECONDS
        until = (claimed.next_due - timezone.now()).total_seconds()
        return min(max(until, 0.01), IDLE_SECONDS)

    async def _claim(self) -> Claimed:
        free = self.concurrency - len(self._running)
        if free <= 0:
            return NOTHING
        try:
            return await self._in_db(claim_due, free)
        except Exception:
            logger.exception("Claiming webhook deliveries failed; trying again shortly")
            await self._in_db(_drop_broken_connections)
            return NOTHING

    async def _deliver(self, job: Job) -> None:
        try:
            answer = await send(job)
        except Exception as error:  # a defect: logged, recorded, and the delivery retried
            logger.exception("Webhook attempt failed unexpectedly")
            answer = transport.Answer(None, "", f"internal error: {type(error).__name__}", 0)
        try:
            await self._in_db(record, job, answer)
            self.sent += 1
        except Exception:
            # Its lease ends and another claim tries it again (the receiver deduplicates
            # on webhook-id should the first attempt have arrived).
            logger.exception("Recording a webhook attempt failed")
            await self._in_db(_drop_broken_connections)

    async def _listen(self) -> None:
        """Wake on the fan-out's notifications (a dedicated connection; polling covers any
        gap while it reconnects)."""
        import psycopg

        params = connections["default"].get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        if settings.WEBHOOK_LISTEN_URL:
            params = {"conninfo": settings.WEBHOOK_LISTEN_URL}
        elif settings.DB_TRANSACTION_POOLING:
            logger.info("Behind PgBouncer without WEBHOOK_LISTEN_URL: polling each second")
            return
        while True:
            try:
                listener = await psycopg.AsyncConnection.connect(**params, autocommit=True)
                async with listener:
                    await listener.execute(f"LISTEN {CHANNEL}")
                    self._listening = True
                    async for _ in listener.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("Webhook notifications unavailable (%s); polling", error)
            self._listening = False
            await asyncio.sleep(5)


def _drop_broken_connections() -> None:
    for conn in connections.all(initialized_only=True):
        conn.close_if_unusable_or_obsolete()


def run_forever(*, concurrency: int | None = None) -> None:
    """The command's loop: stops cleanly on SIGINT or SIGTERM (requests in flight finish)."""
    sender = Sender(concurrency=concurrency)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, sender.stop)
        await sender.run()

    asyncio.run(main())
