"""A slow endpoint holds only its own few places; one busy restaurant cannot crowd out
another; a claim is a lease, taken again only once it ends."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from tenants.context import tenant_context
from tests.support.events import ping
from tests.support.webhook_receiver import Receiver, Reply
from tests.webhooks.conftest import (
    actor_of,
    attempts,
    deliveries,
    make_endpoint,
    publish,
    send_due,
)
from webhooks import sender, services, transport
from webhooks.models import Delivery


@pytest.mark.usefixtures("transactional_db")
def test_an_endpoint_that_never_answers_holds_only_its_own_places(roster, receiver, monkeypatch):
    monkeypatch.setattr(transport, "TOTAL_TIMEOUT", 1.5)
    limit = settings.WEBHOOK_ENDPOINT_CONCURRENCY
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    slow = Receiver(default=Reply(delay=60)).start()
    try:
        stuck = make_endpoint(owner, slow.url).endpoint
        healthy = make_endpoint(owner, receiver.url).endpoint
        # Both owed many deliveries, the slow one's first.
        publish(ours, *(ping(ours.pk, n=n) for n in range(1, limit + 3)))
        with tenant_context(ours):
            Delivery.objects.filter(endpoint=stuck).update(
                next_attempt_at=timezone.now() - timedelta(seconds=1)
            )

        send_due()
    finally:
        slow.stop()

    assert slow.peak == limit
    assert len(slow.received) == limit + 2  # each tried once, never more than the limit at once
    assert len(receiver.received) == limit + 2
    assert {d.status for d in deliveries(ours, endpoint=healthy)} == {"succeeded"}
    stuck_attempts = attempts(ours, endpoint=stuck)
    assert {a.error for a in stuck_attempts} == {"no answer within 1.5 s"}
    assert {d.status for d in deliveries(ours, endpoint=stuck)} == {"pending"}
    last_healthy = max(a.attempted_at for a in attempts(ours, endpoint=healthy))
    assert last_healthy < min(a.attempted_at for a in stuck_attempts)


@pytest.mark.usefixtures("transactional_db")
def test_a_claim_takes_each_restaurants_first_before_any_restaurants_second(roster):
    busy_owner, quiet_owner = roster[("ours", "owner")], roster[("theirs", "owner")]
    busy = make_endpoint(busy_owner, "https://93.184.216.34/a").endpoint
    quiet = make_endpoint(quiet_owner, "https://93.184.216.34/b").endpoint
    now = timezone.now()
    with tenant_context(busy_owner.restaurant):
        Delivery.objects.bulk_create(
            Delivery(endpoint=busy, event_type="test.pinged", message_id=f"m{n}",
                     next_attempt_at=now - timedelta(minutes=60 - n))
            for n in range(50)
        )  # fmt: skip
    with tenant_context(quiet_owner.restaurant):
        (only,) = Delivery.objects.bulk_create(
            [
                Delivery(
                    endpoint=quiet, event_type="test.pinged", message_id="q", next_attempt_at=now
                )
            ]
        )

    jobs = sender.claim(slots=2)

    assert sorted(job.restaurant_id for job in jobs) == sorted(
        [busy_owner.restaurant.pk, quiet_owner.restaurant.pk]
    )
    assert only.pk in {job.delivery_id for job in jobs}
    busy_job = next(job for job in jobs if job.endpoint_id == busy.pk)
    assert busy_job.message_id == "m0"  # its oldest
    # The busy endpoint gets no more than its limit, however many slots are free.
    more = sender.claim(slots=100)
    assert len(more) == settings.WEBHOOK_ENDPOINT_CONCURRENCY - 1


@pytest.mark.usefixtures("transactional_db")
def test_a_lease_is_claimed_again_only_once_it_ended(roster):
    owner = roster[("ours", "owner")]
    endpoint = make_endpoint(owner, "https://93.184.216.34/a").endpoint
    now = timezone.now()
    with tenant_context(owner.restaurant):
        held, expired, free = Delivery.objects.bulk_create(
            Delivery(endpoint=endpoint, event_type="test.pinged", message_id=name,
                     next_attempt_at=now - timedelta(minutes=1), locked_until=until)
            for name, until in [
                ("held", now + timedelta(seconds=30)),
                ("expired", now - timedelta(seconds=1)),
                ("free", None),
            ]
        )  # fmt: skip

    claimed = {job.delivery_id for job in sender.claim(slots=10, now=now)}

    assert claimed == {expired.pk, free.pk}
    with tenant_context(owner.restaurant):
        leases = dict(Delivery.objects.values_list("pk", "locked_until"))
    assert leases[expired.pk] == leases[free.pk] == now + sender.LEASE
    assert sender.claim(slots=10, now=now + timedelta(seconds=1)) == []
    # When the leases end, all three are free to take again.
    later = now + sender.LEASE + timedelta(seconds=1)
    assert {job.delivery_id for job in sender.claim(slots=10, now=later)} == {
        held.pk, expired.pk, free.pk,
    }  # fmt: skip


@pytest.mark.usefixtures("transactional_db")
def test_an_idle_sender_knows_when_to_look_again(roster):
    """Nothing due now: the claim says when the next retry, or the end of a lease, falls due,
    so a sender woken by notifications need not look every second."""
    owner = roster[("ours", "owner")]
    endpoint = make_endpoint(owner, "https://93.184.216.34/a").endpoint
    now = timezone.now()
    assert sender.claim_due(slots=5, now=now) == sender.Claimed([], None)
    with tenant_context(owner.restaurant):
        Delivery.objects.bulk_create(
            Delivery(endpoint=endpoint, event_type="test.pinged", message_id=name,
                     next_attempt_at=due, locked_until=until)
            for name, due, until in [
                ("retry", now + timedelta(minutes=5), None),
                ("in flight", now - timedelta(seconds=1), now + timedelta(seconds=40)),
                ("done", None, None),
            ]
        )  # fmt: skip

    claimed = sender.claim_due(slots=5, now=now)

    assert claimed.jobs == []
    assert claimed.next_due == now + timedelta(seconds=40)
    later = sender.claim_due(slots=5, now=now + timedelta(seconds=41))
    assert [job.message_id for job in later.jobs] == ["in flight"]
    # Its new lease ends before the retry is due (the sender that holds it looks then too).
    assert later.next_due == now + timedelta(seconds=41) + sender.LEASE


@pytest.mark.usefixtures("transactional_db")
def test_a_notification_wakes_a_waiting_sender(roster, receiver, monkeypatch):
    """The sender waits on PostgreSQL's notifications: with its own looks an hour apart, a
    test message still goes out as soon as it is asked for."""
    monkeypatch.setattr(sender, "IDLE_SECONDS", 3600.0)
    owner = roster[("ours", "owner")]
    endpoint = make_endpoint(owner, receiver.url).endpoint
    waiting = sender.Sender(poll_seconds=3600.0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=lambda: loop.run_until_complete(waiting.run()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not waiting._listening and time.monotonic() < deadline:
            time.sleep(0.05)
        assert waiting._listening, "the sender listens"
        time.sleep(0.2)  # it has looked once and now waits
        with tenant_context(owner.restaurant):
            services.send_test(actor=actor_of(owner), endpoint=endpoint)
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.body["type"] for r in receiver.received] == ["webhook.test"]
    finally:
        loop.call_soon_threadsafe(waiting.stop)
        thread.join(timeout=30)
    assert not thread.is_alive()
