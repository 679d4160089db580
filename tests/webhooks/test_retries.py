"""Failed attempts are tried again on the schedule (with jitter), sooner never than a 429's or
503's Retry-After asks (up to 24 h), ten times in all; a redirect is a failure; 410 Gone
disables the endpoint at once; an endpoint failing for days is warned about, then disabled.

The sender runs for real against a loopback receiver. Between attempts the wait is made to
pass by moving the delivery's ``next_attempt_at`` to now in the database, after checking the
time the sender chose: the signatures stay valid (their timestamp is the real time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from django.core import mail
from django.utils import timezone

from tenants.context import tenant_context
from tests.support.events import ping
from tests.support.webhook_receiver import Receiver, Reply
from tests.webhooks.conftest import (
    attempts,
    audited,
    deliveries,
    endpoint_of,
    make_endpoint,
    publish,
    send_due,
    wait_passes,
)
from webhooks import health, transport
from webhooks.messages import JITTER, MAX_ATTEMPTS, MAX_RETRY_AFTER, SCHEDULE, next_attempt
from webhooks.models import Delivery

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


# --- The schedule, as units -------------------------------------------------------------------


@pytest.mark.parametrize("failed", range(1, MAX_ATTEMPTS))
def test_each_retry_waits_its_scheduled_time_within_the_jitter(failed):
    wait = SCHEDULE[failed]
    assert next_attempt(failed, NOW, jitter=0) == NOW + wait
    assert next_attempt(failed, NOW, jitter=-JITTER) == NOW + wait * (1 - JITTER)
    assert next_attempt(failed, NOW, jitter=JITTER) == NOW + wait * (1 + JITTER)
    for _ in range(20):  # the random jitter stays within its bounds
        chosen = next_attempt(failed, NOW)
        assert chosen is not None
        assert NOW + wait * (1 - JITTER) <= chosen <= NOW + wait * (1 + JITTER)


def test_the_schedule_gives_ten_attempts_over_about_three_days():
    assert MAX_ATTEMPTS == 10
    assert [int(s.total_seconds()) for s in SCHEDULE[1:]] == [
        5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400,
    ]  # fmt: skip
    assert next_attempt(MAX_ATTEMPTS, NOW, jitter=0) is None
    assert next_attempt(MAX_ATTEMPTS, NOW, 60, jitter=0) is None


def test_a_retry_after_is_followed_when_longer_and_capped_at_a_day():
    assert next_attempt(1, NOW, 120, jitter=0) == NOW + timedelta(seconds=120)
    assert next_attempt(1, NOW, 1, jitter=0) == NOW + timedelta(seconds=5)  # the schedule's
    assert next_attempt(1, NOW, 10**9, jitter=0) == NOW + MAX_RETRY_AFTER


def test_retry_after_reads_seconds_and_http_dates():
    assert transport.retry_after("120") == 120.0
    assert transport.retry_after(" 7 ") == 7.0
    when = NOW + timedelta(hours=2)
    assert transport.retry_after(format_datetime(when, usegmt=True), NOW) == 7200.0
    assert transport.retry_after(format_datetime(NOW - timedelta(hours=1), usegmt=True), NOW) == 0
    for unreadable in (None, "", "soon", "-5", "1.5", "²", "١٢٠"):
        assert transport.retry_after(unreadable, NOW) is None


# --- Against the sender -----------------------------------------------------------------------


def _offset(delivery) -> timedelta:
    assert delivery.next_attempt_at is not None and delivery.last_attempt_at is not None
    return delivery.next_attempt_at - delivery.last_attempt_at


def _within_jitter(offset: timedelta, wait: timedelta) -> bool:
    return wait * (1 - JITTER) <= offset <= wait * (1 + JITTER)


@pytest.mark.usefixtures("transactional_db")
def test_two_failures_then_a_success(roster, receiver):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    receiver.secrets.append(make_endpoint(owner, receiver.url).secret)
    receiver.answer(Reply(500, b"boom"), Reply(503))
    publish(ours, ping(ours.pk))

    assert send_due() == 1
    (delivery,) = deliveries(ours)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert _within_jitter(_offset(delivery), SCHEDULE[1])
    assert send_due() == 0  # not due yet
    wait_passes(ours)
    assert send_due() == 1
    (delivery,) = deliveries(ours)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 2, 503)
    assert _within_jitter(_offset(delivery), SCHEDULE[2])
    wait_passes(ours)
    assert send_due() == 1

    (delivery,) = deliveries(ours)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("succeeded", 3, None)
    assert [(a.status_code, a.response_body) for a in attempts(ours)] == [
        (500, "boom"), (503, "ok"), (200, "ok"),
    ]  # fmt: skip
    assert len(receiver.received) == 3
    assert all(r.verified is not None for r in receiver.received)
    assert endpoint_of(ours, delivery.endpoint_id).failing_since is None


@pytest.mark.usefixtures("transactional_db")
def test_retry_after_in_seconds_and_as_a_date_is_honoured_up_to_a_day(roster, receiver):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    make_endpoint(owner, receiver.url)
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    receiver.answer(
        Reply(429, headers={"Retry-After": "120"}),
        Reply(503, headers={"Retry-After": format_datetime(at, usegmt=True)}),
        Reply(429, headers={"Retry-After": str(10**8)}),
        Reply(500, headers={"Retry-After": "100000"}),  # only 429 and 503 are asked
    )
    publish(ours, ping(ours.pk))

    send_due()
    (delivery,) = deliveries(ours)
    assert _offset(delivery) == timedelta(seconds=120)
    wait_passes(ours)
    send_due()
    (delivery,) = deliveries(ours)
    assert delivery.next_attempt_at is not None
    assert at - timedelta(seconds=1) <= delivery.next_attempt_at <= at + timedelta(minutes=1)
    wait_passes(ours)
    send_due()
    (delivery,) = deliveries(ours)
    assert _offset(delivery) == MAX_RETRY_AFTER
    wait_passes(ours)
    send_due()
    (delivery,) = deliveries(ours)
    assert _within_jitter(_offset(delivery), SCHEDULE[4])
    assert [a.status_code for a in attempts(ours)] == [429, 503, 429, 500]


@pytest.mark.usefixtures("transactional_db")
def test_a_redirect_is_a_failure_and_the_tenth_failure_is_final(roster, receiver):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    elsewhere = Receiver().start()
    try:
        make_endpoint(owner, receiver.url)
        receiver.default = Reply(500)
        receiver.answer(Reply(302, headers={"Location": elsewhere.url}))
        publish(ours, ping(ours.pk))

        for attempt in range(1, MAX_ATTEMPTS + 1):
            assert send_due() == 1, attempt
            (delivery,) = deliveries(ours)
            assert delivery.attempts == attempt
            if attempt < MAX_ATTEMPTS:
                assert delivery.status == "pending"
                assert _within_jitter(_offset(delivery), SCHEDULE[attempt])
                assert wait_passes(ours) == 1
    finally:
        elsewhere.stop()

    (delivery,) = deliveries(ours)
    assert (delivery.status, delivery.next_attempt_at) == ("failed", None)
    assert [a.status_code for a in attempts(ours)] == [302] + [500] * (MAX_ATTEMPTS - 1)
    assert len(receiver.received) == MAX_ATTEMPTS
    assert elsewhere.received == []
    assert send_due() == 0


@pytest.mark.usefixtures("transactional_db")
def test_410_disables_the_endpoint_fails_what_it_is_owed_and_tells_owners_and_admins(
    roster, receiver
):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    gone_receiver = Receiver(default=Reply(410, b"gone")).start()
    try:
        gone = make_endpoint(owner, gone_receiver.url).endpoint
        healthy = make_endpoint(owner, receiver.url).endpoint
        publish(ours, ping(ours.pk, n=1), ping(ours.pk, n=2))
        # One of the two owed to it waits for a later attempt when the 410 comes.
        later = deliveries(ours, endpoint_id=gone.pk)[1]
        with tenant_context(ours):
            Delivery.objects.filter(pk=later.pk).update(
                next_attempt_at=timezone.now() + timedelta(hours=1)
            )
        mail.outbox.clear()

        assert send_due() == 3
        publish(ours, ping(ours.pk, n=3))
        assert send_due() == 1
    finally:
        gone_receiver.stop()

    assert len(gone_receiver.received) == 1
    assert len(receiver.received) == 3
    endpoint = endpoint_of(ours, gone.pk)
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")
    assert endpoint.disabled_at is not None
    assert endpoint_of(ours, healthy.pk).enabled is True
    assert {d.status for d in deliveries(ours, endpoint_id=gone.pk)} == {"failed"}
    assert deliveries(ours, pk=later.pk)[0].last_error == "The endpoint was disabled."
    assert {d.status for d in deliveries(ours, endpoint_id=healthy.pk)} == {"succeeded"}
    (message,) = mail.outbox
    assert sorted(message.to) == sorted(
        [roster[("ours", "owner")].email, roster[("ours", "admin")].email]
    )
    assert "disabled" in message.subject
    assert gone_receiver.url in message.body and "410" in message.body
    (event,) = audited(ours, "webhook_endpoint.disabled")
    assert (event.target_id, event.changes, event.actor_type) == (
        str(gone.pk),
        {"reason": "gone"},
        "system",
    )
    assert audited(roster[("theirs", "owner")].restaurant, "webhook_endpoint.disabled") == []


@pytest.mark.usefixtures("transactional_db")
def test_an_endpoint_failing_for_days_is_warned_about_once_then_disabled(roster, receiver):
    owner = roster[("ours", "owner")]
    ours = owner.restaurant
    endpoint = make_endpoint(owner, receiver.url).endpoint
    receiver.default = Reply(500)
    publish(ours, ping(ours.pk))
    send_due()
    since = endpoint_of(ours, endpoint.pk).failing_since
    assert since is not None
    mail.outbox.clear()

    assert health.check_failing(now=since + timedelta(days=3, hours=23)) == (0, 0)
    assert mail.outbox == []
    assert health.check_failing(now=since + timedelta(days=4, minutes=1)) == (1, 0)
    (warning,) = mail.outbox
    assert "failing" in warning.subject and receiver.url in warning.body
    assert sorted(warning.to) == sorted(
        [roster[("ours", "owner")].email, roster[("ours", "admin")].email]
    )
    assert health.check_failing(now=since + timedelta(days=4, hours=6)) == (0, 0)
    assert len(mail.outbox) == 1  # warned once

    # A success clears the run of failures: five days after it began, nothing happens.
    receiver.default = Reply(200)
    wait_passes(ours)
    send_due()
    cleared = endpoint_of(ours, endpoint.pk)
    assert (cleared.failing_since, cleared.failure_warned_at) == (None, None)
    assert health.check_failing(now=since + timedelta(days=5, minutes=1)) == (0, 0)
    assert endpoint_of(ours, endpoint.pk).enabled is True

    # A new run of failures, five days long: disabled, and Owners and Admins told.
    receiver.default = Reply(503)
    publish(ours, ping(ours.pk))
    send_due()
    since = endpoint_of(ours, endpoint.pk).failing_since
    assert since is not None
    mail.outbox.clear()
    assert health.check_failing(now=since + timedelta(days=5, minutes=1)) == (0, 1)
    disabled = endpoint_of(ours, endpoint.pk)
    assert (disabled.enabled, disabled.disabled_reason) == (False, "failing")
    (message,) = mail.outbox
    assert "disabled" in message.subject and "5 days" in message.body
    (event,) = audited(ours, "webhook_endpoint.disabled")
    assert (event.changes, event.actor_type) == ({"reason": "failing"}, "scheduler")
    assert {d.status for d in deliveries(ours)} == {"succeeded", "failed"}
