"""Writing published events: the event rows and the task that delivers them, in one statement.

With django-tasks-db (the project's queue) the delivery task is a row in the same database:
one statement inserts the events and that row together, inside the writing transaction, so the
task exists exactly when the events do and a worker picks it up once they commit. Nothing is
left to do after the commit, so a process that dies right after it loses nothing.

With any other task backend the task is enqueued once the transaction commits. A process that
dies between the commit and that enqueue leaves its events undispatched; the periodic
redelivery (``events.periodic``) enqueues them then.

Events whose type nobody subscribes to are written as dispatched, with no task.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, models, transaction
from django.db.models.sql import InsertQuery
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult, get_date_max

from events.models import Event
from events.tasks import deliver_events
from nordkestrel import events


def _insert(model: type[models.Model], rows: Sequence[models.Model]) -> tuple[str, list[Any]]:
    """The INSERT the ORM would write for ``rows`` (defaults and auto_now filled in)."""
    query = InsertQuery(model)
    query.insert_values(list(model._meta.local_concrete_fields), list(rows))
    ((sql, params),) = query.get_compiler(using=DEFAULT_DB_ALIAS).as_sql()
    return sql, list(params)


def _task_rows(deliveries: dict[int, list[str]]) -> list[DBTaskResult]:
    """What ``deliver_events.enqueue`` would store, one row per restaurant."""
    task = deliver_events
    return [
        DBTaskResult(
            id=DBTaskResult._meta.pk.get_default(),
            args_kwargs={
                "args": [],
                "kwargs": {"restaurant_id": restaurant_id, "event_ids": event_ids},
            },
            priority=task.priority,
            task_path=task.module_path,
            queue_name=task.queue_name,
            # What the model's pre_save handler does for a task with no run_after.
            run_after=task.run_after or get_date_max(),
            backend_name=task.backend,
        )
        for restaurant_id, event_ids in deliveries.items()
    ]


class TableOutbox:
    def write(self, published: Sequence[events.Event]) -> None:
        now = timezone.now()
        rows = []
        deliveries: dict[int, list[str]] = {}
        for event in published:
            subscribed = bool(events.subscribers_of(event.type))
            rows.append(
                Event(
                    id=event.id,
                    restaurant_id=event.restaurant_id,
                    type=event.type,
                    version=event.version,
                    payload=event.payload,
                    occurred_at=event.occurred_at,
                    dispatched_at=None if subscribed else now,
                )
            )
            if subscribed:
                deliveries.setdefault(event.restaurant_id, []).append(str(event.id))
        sql, params = _insert(Event, rows)
        queued_here = isinstance(deliver_events.get_backend(), DatabaseBackend)
        if deliveries and queued_here:
            task_sql, task_params = _insert(DBTaskResult, _task_rows(deliveries))
            sql, params = f"WITH written AS ({sql}) {task_sql}", [*params, *task_params]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        if deliveries and not queued_here:
            for restaurant_id, event_ids in deliveries.items():
                # Robust: the change has committed whatever the queue says; the periodic
                # redelivery covers an enqueue that failed.
                enqueue = partial(
                    deliver_events.enqueue, restaurant_id=restaurant_id, event_ids=event_ids
                )
                transaction.on_commit(enqueue, robust=True)
