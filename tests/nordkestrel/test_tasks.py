"""Background work through the real queue: tasks are stored in PostgreSQL by django-tasks-db
and run by its worker, each in the restaurant it names, with the outcome recorded."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core import mail
from django.db import connection
from django.tasks import TaskResultStatus, default_task_backend
from django_tasks_db.models import DBTaskResult

from events.models import Delivery, Event
from orders.checkout_request import parse_checkout
from orders.models import Order, Status
from orders.placement import place_order
from tenants.context import current_restaurant_or_none, tenant_context
from tests.factories import make_shop, open_all_week
from tests.support.tasks import staff_count_without_context, visible_staff

ROOT = Path(__file__).resolve().parents[2]
# A Monday, inside opening hours (restaurants default to UTC).
NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def staff_emails(restaurant, roster):
    return sorted(m.email for (slug, _), m in roster.items() if slug == restaurant.slug)


def test_enqueueing_stores_the_task_and_runs_nothing(db_tasks, roster, restaurants):
    ours, _ = restaurants

    result = visible_staff.enqueue(restaurant_id=ours.pk)

    assert result.status == TaskResultStatus.READY
    (row,) = db_tasks.queued()
    assert str(row.id) == result.id
    assert row.task_path == "tests.support.tasks.visible_staff"
    assert row.args_kwargs == {"args": [], "kwargs": {"restaurant_id": ours.pk}}
    assert visible_staff.get_result(result.id).status == TaskResultStatus.READY


def test_the_worker_runs_each_task_in_its_own_restaurant_and_records_the_result(
    db_tasks, roster, restaurants
):
    ours, theirs = restaurants
    # Enqueued from inside the other restaurant's context: only the argument travels.
    with tenant_context(theirs):
        for_ours = visible_staff.enqueue(restaurant_id=ours.pk)
    for_theirs = visible_staff.enqueue(restaurant_id=theirs.pk)

    finished = db_tasks.run()

    assert {r.id for r in finished} == {for_ours.id, for_theirs.id}
    assert db_tasks.queued() == []
    stored = visible_staff.get_result(for_ours.id)
    assert stored.status == TaskResultStatus.SUCCESSFUL
    assert stored.worker_ids, "claimed by a worker"
    assert stored.finished_at is not None
    assert stored.return_value == {
        "restaurant": "ours",
        "staff": staff_emails(ours, roster),
        "raw_restaurant_ids": [ours.pk],
    }
    assert visible_staff.get_result(for_theirs.id).return_value == {
        "restaurant": "theirs",
        "staff": staff_emails(theirs, roster),
        "raw_restaurant_ids": [theirs.pk],
    }
    assert current_restaurant_or_none() is None, "the worker leaves no context behind"


def test_a_task_that_does_not_enter_its_restaurant_fails_closed(db_tasks, roster, restaurants):
    ours, _ = restaurants
    with tenant_context(ours):
        result = staff_count_without_context.enqueue(restaurant_id=ours.pk)

    (finished,) = db_tasks.run(expect_failures=True)

    assert finished.id == result.id
    assert finished.status == TaskResultStatus.FAILED
    (error,) = finished.errors
    assert error.exception_class_path == "tenants.context.TenantNotSet"
    stored = default_task_backend.get_result(result.id)
    assert stored.status == TaskResultStatus.FAILED
    assert "TenantNotSet" in stored.errors[0].traceback


@pytest.fixture
def shops(restaurants):
    for restaurant in restaurants:
        open_all_week(restaurant)
    return {restaurant.slug: (restaurant, make_shop(restaurant)) for restaurant in restaurants}


def place(restaurant, ids, email):
    body = {
        "lines": [{"item_id": ids["fries"], "quantity": 1}],
        "name": "Ada",
        "email": email,
    }
    with tenant_context(restaurant):
        order, created = place_order(
            restaurant=restaurant,
            request=parse_checkout(body, restaurant.zone),
            idempotency_key=f"key-{email}",
            now=NOW,
        )
    assert created
    return order


def test_an_order_email_waits_in_the_queue_until_the_worker_sends_it(db_tasks, shops):
    ours, ids = shops["ours"]

    order = place(ours, ids, "ada@example.com")

    assert mail.outbox == [], "nothing is sent at commit"
    with tenant_context(ours):
        published = {e.type: str(e.pk) for e in Event.objects.all()}
    # The checkout's events (a new customer, the order; the menu's publish came before). Every
    # type has a subscriber (outbound webhooks take them all): the publish queued its task,
    # and the checkout one task for both of its events.
    assert set(published) == {"menu.published", "customer.created", "order.placed"}
    queued = [
        row for row in db_tasks.queued() if row.args_kwargs["kwargs"]["restaurant_id"] == ours.pk
    ]
    assert {row.task_path for row in queued} == {"events.tasks.deliver_events"}
    assert sorted(
        (row.args_kwargs["kwargs"]["restaurant_id"], sorted(row.args_kwargs["kwargs"]["event_ids"]))
        for row in queued
    ) == sorted(
        [
            (ours.pk, [published["menu.published"]]),
            (ours.pk, sorted([published["customer.created"], published["order.placed"]])),
        ]
    )

    results = db_tasks.run()

    assert {result.status for result in results} == {TaskResultStatus.SUCCESSFUL}
    (email,) = mail.outbox
    assert email.to == ["ada@example.com"]
    assert email.subject == f"Your order #{order.number} at {ours.name}"


def test_a_failed_email_is_recorded_and_the_worker_carries_on(db_tasks, shops, settings):
    settings.MAILERS = {"default": {"BACKEND": "tests.support.tasks.RefusingEmailBackend"}}
    ours, our_ids = shops["ours"]
    theirs, their_ids = shops["theirs"]
    refused = place(ours, our_ids, "ada@refused.example")
    place(theirs, their_ids, "grace@example.com")

    finished = db_tasks.run()

    outcomes: dict[int, dict[str, int]] = {}
    for result in finished:
        total = outcomes.setdefault(result.kwargs["restaurant_id"], {"delivered": 0, "failed": 0})
        for name, count in result.return_value.items():
            total[name] += count
    # Each restaurant's menu publish, new customer and order go to the webhooks' fan-out (3);
    # the order also to the diner's email, which fails in ours only.
    assert outcomes == {
        ours.pk: {"delivered": 3, "failed": 1},
        theirs.pk: {"delivered": 4, "failed": 0},
    }
    assert [email.to for email in mail.outbox] == [["grace@example.com"]]
    with tenant_context(ours):
        assert Order.objects.get(pk=refused.pk).status == Status.PLACED
        (delivery,) = Delivery.objects.filter(delivered_at__isnull=True)
    assert (delivery.subscriber, delivery.attempts, delivery.delivered_at) == (
        "orders.diner_email",
        1,
        None,
    )
    assert delivery.error == "ConnectionError: the mail provider refused the connection"
    # The next attempt is queued for when it is due, not before.
    (retry,) = DBTaskResult.objects.filter(status=TaskResultStatus.READY)
    # The checkout's task again (its other event, delivered, is not delivered twice).
    assert str(delivery.event_id) in retry.args_kwargs["kwargs"]["event_ids"]
    assert retry.run_after == delivery.retry_at
    assert db_tasks.queued() == []


def database_url_of_the_test_database():
    database = connection.settings_dict
    host = database["HOST"] or database["OPTIONS"].get("host", "")
    port = f":{database['PORT']}" if database["PORT"] else ""
    credentials = quote(database["USER"], safe="")
    if database["PASSWORD"]:
        credentials += ":" + quote(database["PASSWORD"], safe="")
    return f"postgres://{credentials}@{quote(host, safe='')}{port}/{quote(database['NAME'])}"


def test_the_worker_process_sends_the_email(db_tasks, shops):
    """The worker as `make run` and production start it: its own process and connection."""
    ours, ids = shops["ours"]
    order = place(ours, ids, "ada@example.com")
    env = {key: value for key, value in os.environ.items() if key != "RESEND_API_KEY"}
    env.update(DATABASE_URL=database_url_of_the_test_database(), DJANGO_ENV="development")

    command = "db_worker --batch --no-reload --interval 0 --no-startup-delay --queue-name *"
    worker = subprocess.run(
        [sys.executable, "manage.py", *command.split()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert worker.returncode == 0, worker.stderr
    # Development prints emails on the console.
    assert f"Subject: Your order #{order.number} at {ours.name}" in worker.stdout
    assert mail.outbox == []
    # Both restaurants' menu publishes and our checkout: a task each, all done.
    assert [row.status for row in DBTaskResult.objects.all()] == [TaskResultStatus.SUCCESSFUL] * 3
    assert db_tasks.queued() == []
