"""Periodic jobs: housekeeping that a scheduler runs through one command, ``run_periodic``.

A job is a function without arguments, registered under a stable name::

    from nordkestrel.periodic import periodic

    @periodic("audit-prune")
    def prune_audit_log() -> None: ...

Jobs live in an app's ``periodic.py`` (found the way the admin finds ``admin.py``) and run in
``INSTALLED_APPS`` order, then in the order they are written. Every job must be idempotent:
the scheduler may call the command again after a crash, or late, or twice. A job that crosses
restaurants enters each restaurant's context for its rows, and ``tenant_bypass()`` only where
it must.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

Job = Callable[[], object]
J = TypeVar("J", bound=Job)

_jobs: dict[str, Job] = {}


def periodic(name: str) -> Callable[[J], J]:
    """Register the decorated function as the periodic job ``name``."""

    def register(job: J) -> J:
        if name in _jobs:
            raise ImproperlyConfigured(f"A periodic job named {name!r} is already registered.")
        _jobs[name] = job
        return job

    return register


def registered_jobs() -> list[tuple[str, Job]]:
    """Every job, after importing each installed app's ``periodic`` module."""
    autodiscover_modules("periodic")
    return list(_jobs.items())


@periodic("task-results-prune")
def prune_task_results() -> int:
    """Delete finished task results (django-tasks-db rows) past their retention.

    Queued and running tasks are never touched. Deleting what is already gone is a no-op, so
    running this twice is harmless.
    """
    from django_tasks_db.models import DBTaskResult

    cutoff = timezone.now() - timedelta(days=settings.TASK_RESULT_RETENTION_DAYS)
    deleted, _ = DBTaskResult.objects.finished().filter(finished_at__lt=cutoff).delete()
    return deleted
