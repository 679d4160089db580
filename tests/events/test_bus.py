"""The event bus: an event exists exactly when the change that published it commits, and
each subscriber gets each event once, after the commit, in the restaurant's context, whatever
the other subscribers do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events import periodic as housekeeping
from events.dispatch import MAX_ATTEMPTS, deliver, lock_key
from events.models import Delivery, Event
from events.tasks import deliver_events
from nordkestrel import events
from orders.checkout_request import parse_checkout
from orders.placement import place_order
from tenants.context import tenant_context
from tests.factories import make_shop, open_all_week
from tests.support.events import PINGED, ping, recorded, refusing

pytestmark = pytest.mark.usefixtures("transactional_db")

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)  # a Monday, inside opening hours


@pytest.fixture(autouse=True)
def _fresh_subscribers():
    recorded.reset()
    refusing.reset()
    yield
    recorded.reset()
    refusing.reset()


def pinged(restaurant) -> list[Event]:
    with tenant_context(restaurant):
        return list(Event.objects.filter(type=PINGED.name).order_by("id"))


def deliveries(restaurant) -> dict[str, Delivery]:
    with tenant_context(restaurant):
        return {d.subscriber: d for d in Delivery.objects.filter(event__type=PINGED.name)}


def publish_in(restaurant, *published: events.Event) -> None:
    with tenant_context(restaurant):
        events.publish(*published)


def publish_then_fail(*published: events.Event) -> None:
    """A block that publishes, then fails (in a savepoint when inside a transaction)."""
    with transaction.atomic():
        events.publish(*published)
        raise RuntimeError("changed my mind")


def collect_then_fail(*published: events.Event) -> None:
    with events.collect():
        events.publish(*published)
        raise RuntimeError("changed my mind")


def test_an_event_of_a_rolled_back_transaction_is_never_stored_nor_delivered(restaurants):
    ours, _ = restaurants
    with pytest.raises(RuntimeError, match="changed my mind"), tenant_context(ours):
        publish_then_fail(ping(ours.pk))

    assert pinged(ours) == []
    assert recorded.seen == refusing.seen == []


def test_a_committed_event_is_stored_and_each_subscriber_runs_once_after_the_commit(restaurants):
    ours, theirs = restaurants
    with tenant_context(ours):
        event = ping(ours.pk, n=7)
        events.publish(event)
        assert recorded.seen == [], "nothing runs before the commit"

    (row,) = pinged(ours)
    assert (row.pk, row.type, row.version, row.occurred_at) == (
        event.id,
        "test.pinged",
        1,
        event.occurred_at,
    )
    assert row.payload == {"n": 7, "contact": {"email": "a@b.c"}}
    assert row.dispatched_at is not None
    # In the event's restaurant, whichever context published it.
    assert recorded.seen == [{"n": 7, "restaurant": "ours"}]
    assert refusing.seen == [{"n": 7}]
    done = deliveries(ours)
    assert {name: (d.attempts, d.error) for name, d in done.items()} == {
        "tests.recorder": (1, ""),
        "tests.refuser": (1, ""),
        # Outbound webhooks receive every event (the restaurant has no endpoint: nothing owed).
        "webhooks.fanout": (1, ""),
    }
    assert all(d.delivered_at for d in done.values())
    assert pinged(theirs) == []


def test_delivering_again_runs_no_subscriber_twice(restaurants):
    ours, _ = restaurants
    publish_in(ours, ping(ours.pk))
    (row,) = pinged(ours)

    deliver(restaurant_id=ours.pk, event_ids=[str(row.pk)])
    # Even an event whose dispatch was not recorded (a worker that died just before) is not
    # delivered twice to a subscriber that had it.
    with tenant_context(ours):
        Event.objects.filter(pk=row.pk).update(dispatched_at=None)
    outcome = deliver(restaurant_id=ours.pk, event_ids=[str(row.pk)])
    deliver_events.enqueue(restaurant_id=ours.pk, event_ids=[str(row.pk)])

    assert outcome.as_dict() == {"delivered": 0, "failed": 0}
    assert len(recorded.seen) == len(refusing.seen) == 1
    assert pinged(ours)[0].dispatched_at is not None


def test_an_order_email_is_sent_once_however_often_its_event_is_delivered(restaurants):
    ours, _ = restaurants
    open_all_week(ours)
    ids = make_shop(ours)
    body = {"lines": [{"item_id": ids["fries"], "quantity": 1}], "name": "Ada",
            "email": "ada@example.com"}  # fmt: skip
    order, _ = place_order(
        restaurant=ours, request=parse_checkout(body, ours.zone), idempotency_key="once", now=NOW
    )
    assert [m.subject for m in mail.outbox] == [f"Your order #{order.number} at Ours"]
    with tenant_context(ours):
        placed = Event.objects.get(type="order.placed")
        Event.objects.filter(pk=placed.pk).update(dispatched_at=None)

    for _ in range(2):
        deliver(restaurant_id=ours.pk, event_ids=[str(placed.pk)])
        deliver_events.enqueue(restaurant_id=ours.pk, event_ids=[str(placed.pk)])

    assert len(mail.outbox) == 1
    with tenant_context(ours):
        done = {d.subscriber: d.attempts for d in Delivery.objects.filter(event=placed)}
    assert done == {"orders.diner_email": 1, "webhooks.fanout": 1}


def test_a_failing_subscriber_does_not_stop_the_others_and_is_retried_when_due(restaurants):
    ours, _ = restaurants
    refusing.failing = True

    publish_in(ours, ping(ours.pk, n=1))

    assert recorded.seen == [{"n": 1, "restaurant": "ours"}]
    failed = deliveries(ours)["tests.refuser"]
    assert (failed.attempts, failed.delivered_at) == (1, None)
    assert failed.error == "ConnectionError: the subscriber's service is down"
    assert failed.retry_at is not None and failed.retry_at > timezone.now()
    (row,) = pinged(ours)
    assert row.dispatched_at is None, "still owed to the failed subscriber"

    # Not before its time, and the subscriber that had it does not get it again.
    deliver(restaurant_id=ours.pk, event_ids=[str(row.pk)])
    assert len(refusing.seen) == 1
    refusing.failing = False
    with tenant_context(ours):
        Delivery.objects.filter(pk=failed.pk).update(retry_at=timezone.now())
    deliver(restaurant_id=ours.pk, event_ids=[str(row.pk)])

    assert len(refusing.seen) == 2
    assert len(recorded.seen) == 1
    retried = deliveries(ours)["tests.refuser"]
    assert (retried.attempts, retried.error, retried.retry_at) == (2, "", None)
    assert retried.delivered_at is not None
    assert pinged(ours)[0].dispatched_at is not None


def test_a_subscriber_that_keeps_failing_is_given_up_after_the_last_attempt(restaurants):
    ours, _ = restaurants
    refusing.failing = True
    publish_in(ours, ping(ours.pk))
    (row,) = pinged(ours)
    for _ in range(MAX_ATTEMPTS + 2):
        with tenant_context(ours):
            Delivery.objects.filter(retry_at__isnull=False).update(retry_at=timezone.now())
        deliver(restaurant_id=ours.pk, event_ids=[str(row.pk)])

    assert len(refusing.seen) == MAX_ATTEMPTS
    given_up = deliveries(ours)["tests.refuser"]
    assert (given_up.attempts, given_up.delivered_at, given_up.retry_at) == (
        MAX_ATTEMPTS,
        None,
        None,
    )
    assert pinged(ours)[0].dispatched_at is not None


def test_events_lost_between_commit_and_enqueue_are_redelivered(restaurants, monkeypatch):
    """With a queue outside the database the delivery is enqueued after the commit; a process
    that dies in between leaves the event owed, and the periodic job delivers it."""
    ours, theirs = restaurants
    monkeypatch.setattr(transaction, "on_commit", lambda *args, **kwargs: None)
    publish_in(ours, ping(ours.pk, n=1))
    publish_in(theirs, ping(theirs.pk, n=2))
    monkeypatch.undo()
    assert recorded.seen == []

    assert housekeeping.redeliver_events() == "queued 0 delivery tasks", "too young yet"
    monkeypatch.setattr(housekeeping, "REDELIVERY_GRACE", timedelta(0))
    assert housekeeping.redeliver_events() == "queued 2 delivery tasks"

    assert sorted(r["restaurant"] for r in recorded.seen) == ["ours", "theirs"]
    assert all(row.dispatched_at for row in pinged(ours) + pinged(theirs))
    assert housekeeping.redeliver_events() == "queued 0 delivery tasks"


def test_an_event_another_run_is_delivering_is_left_to_it(restaurants, monkeypatch):
    """Two runs at once (a retry and the redelivery job): the second skips the event the
    first holds, so no subscriber gets it twice; it is delivered once the first lets go."""
    ours, _ = restaurants
    monkeypatch.setattr(transaction, "on_commit", lambda *args, **kwargs: None)
    publish_in(ours, ping(ours.pk))
    monkeypatch.undo()
    (row,) = pinged(ours)
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", list(lock_key(row.pk)))
        held = deliver(restaurant_id=ours.pk, event_ids=[str(row.pk)])
        assert (held.as_dict(), recorded.seen, pinged(ours)[0].dispatched_at) == (
            {"delivered": 0, "failed": 0},
            [],
            None,
        )
    finally:
        other.close()  # the session ends: its lock goes with it

    deliver(restaurant_id=ours.pk, event_ids=[str(row.pk)])
    assert len(recorded.seen) == 1
    assert pinged(ours)[0].dispatched_at is not None


def test_events_are_kept_30_days_then_pruned_with_their_deliveries(restaurants, settings):
    ours, _ = restaurants
    old = timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS, minutes=1)
    recent = timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS - 1)
    for restaurant in restaurants:
        for n, at in ((1, old), (2, recent)):
            payload = {"n": n, "contact": {"email": "a@b.c"}}
            publish_in(restaurant, PINGED.new(restaurant_id=restaurant.pk, payload=payload,
                                              occurred_at=at))  # fmt: skip
    # Two subscribers of the tests' own, and the webhooks' fan-out, have each event.
    assert len(deliveries(ours)) == 3

    assert housekeeping.prune_events() == "pruned 2 events"

    for restaurant in restaurants:
        assert [row.payload["n"] for row in pinged(restaurant)] == [2]
        with tenant_context(restaurant):
            assert Delivery.objects.filter(event__type=PINGED.name).count() == 3
    assert housekeeping.prune_events() == "pruned 0 events"


# --- Publishing: where and at what cost -------------------------------------------------------


def test_collected_events_are_written_in_one_statement(restaurants):
    ours, _ = restaurants
    with tenant_context(ours), CaptureQueriesContext(connection) as queries, events.collect():
        events.publish(ping(ours.pk, n=1))
        events.publish(ping(ours.pk, n=2))
        assert pinged(ours) == [], "written when the block ends"
    written = [q for q in queries.captured_queries if 'INSERT INTO "events_event"' in q["sql"]]
    assert len(written) == 1
    assert [row.payload["n"] for row in pinged(ours)] == [1, 2]


def test_an_event_of_a_rolled_back_savepoint_inside_a_collection_is_not_written(restaurants):
    ours, _ = restaurants
    with tenant_context(ours), events.collect():
        events.publish(ping(ours.pk, n=1))
        with pytest.raises(RuntimeError):
            publish_then_fail(ping(ours.pk, n=2))
        events.publish(ping(ours.pk, n=3))

    assert [row.payload["n"] for row in pinged(ours)] == [1, 3]


def test_a_collection_that_raises_writes_nothing(restaurants):
    ours, _ = restaurants
    with tenant_context(ours):
        with pytest.raises(RuntimeError):
            collect_then_fail(ping(ours.pk))
        events.publish(ping(ours.pk, n=2))

    assert [row.payload["n"] for row in pinged(ours)] == [2]


def test_publishing_outside_a_transaction_is_refused(restaurants):
    ours, _ = restaurants
    with pytest.raises(RuntimeError, match="inside the transaction"):
        events.publish(ping(ours.pk))


def test_an_unknown_type_or_version_is_refused(restaurants):
    ours, _ = restaurants
    event = ping(ours.pk)
    with tenant_context(ours):
        with pytest.raises(LookupError):
            events.publish(events.Event(**{**event.__dict__, "type": "test.unknown"}))
        with pytest.raises(ValueError, match="version 1"):
            events.publish(events.Event(**{**event.__dict__, "version": 2}))
    assert pinged(ours) == []


def test_an_event_cannot_be_written_into_another_restaurant(restaurants):
    ours, theirs = restaurants
    with pytest.raises(Exception, match="row-level security"), tenant_context(ours):
        events.publish(ping(theirs.pk))
    assert pinged(theirs) == []


def test_event_ids_sort_in_the_order_they_were_made():
    ids = [events.new_event_id() for _ in range(1000)]  # many in one millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert {i.version for i in ids} == {7}
