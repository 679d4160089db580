"""The real task queue in tests: django-tasks-db rows in the test database, run by the real
worker (``manage.py db_worker``) when a test asks. See the ``db_tasks`` fixture in
tests/conftest.py; the tasks here exist only for the queue's own tests."""

from __future__ import annotations

import logging
import signal
from typing import Any

import pytest
from django.core.mail.backends.locmem import EmailBackend as MemoryEmailBackend
from django.core.management import call_command
from django.db import connection
from django.tasks import TaskResult, task
from django_tasks_db.models import DBTaskResult

from staff.models import StaffMember
from tenants.context import current_restaurant, tenant_context
from tenants.models import Restaurant

DATABASE_BACKEND = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
IMMEDIATE_BACKEND = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}

# The worker command sets these for a long-lived process; a test puts them back afterwards.
_WORKER_SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGQUIT]
_WORKER_LOGGERS = ["django.tasks", "django_tasks_db"]


class TaskQueue:
    """What a test sees of the database queue."""

    def queued(self) -> list[DBTaskResult]:
        """Tasks stored and waiting for a worker, in the order a worker takes them."""
        return list(DBTaskResult.objects.ready())

    def run(self, *, expect_failures: bool = False) -> list[TaskResult]:
        """Run ``db_worker --batch`` in this thread until no task is ready; return the results
        of the tasks it finished, in order. A failed task fails the test (with its traceback)
        unless ``expect_failures``."""
        if connection.in_atomic_block:
            pytest.fail("Run the worker outside any transaction, as a worker process is.")
        already_finished = set(DBTaskResult.objects.finished().values_list("id", flat=True))
        handlers = {signum: signal.getsignal(signum) for signum in _WORKER_SIGNALS}
        levels = {name: logging.getLogger(name).level for name in _WORKER_LOGGERS}
        try:
            call_command(
                "db_worker",
                batch=True,
                queue_name="*",
                interval=0,
                startup_delay=False,
                reload=False,
                verbosity=0,
            )
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
        finished = (
            DBTaskResult.objects.finished().exclude(id__in=already_finished).order_by("finished_at")
        )
        results: list[TaskResult] = [row.task_result for row in finished]
        failures = [error.traceback for result in results for error in result.errors]
        if failures and not expect_failures:
            pytest.fail("A task failed in the worker:\n" + "\n".join(failures))
        return results


@task
def visible_staff(*, restaurant_id: int) -> dict[str, Any]:
    """What a task sees of tenant data once it has entered its restaurant's context."""
    restaurant = Restaurant.objects.get(pk=restaurant_id)
    with tenant_context(restaurant):
        with connection.cursor() as cursor:
            # Row-level security, below the manager: the raw rows this transaction may read.
            cursor.execute("SELECT DISTINCT restaurant_id FROM staff_staffmember")
            raw_restaurant_ids = sorted(row[0] for row in cursor.fetchall())
        return {
            "restaurant": current_restaurant().slug,
            "staff": sorted(StaffMember.objects.values_list("email", flat=True)),
            "raw_restaurant_ids": raw_restaurant_ids,
        }


@task
def staff_count_without_context(*, restaurant_id: int) -> int:
    """A task that forgets to enter its restaurant: it must fail, never see anyone's rows."""
    return StaffMember.objects.count()


class RefusingEmailBackend(MemoryEmailBackend):
    """The memory outbox, except that mail to refused.example fails as a down provider does."""

    def send_messages(self, email_messages: Any) -> int:
        for message in email_messages:
            if any(address.endswith("@refused.example") for address in message.recipients()):
                raise ConnectionError("the mail provider refused the connection")
        return super().send_messages(email_messages)
