"""Run every periodic job once: what a scheduler (cron, a platform timer) calls, e.g. every
15 minutes. Jobs register in ``nordkestrel/periodic.py``'s registry."""

from __future__ import annotations

import logging
from argparse import ArgumentParser
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from nordkestrel import locks
from nordkestrel.periodic import registered_jobs

logger = logging.getLogger("nordkestrel.periodic")

# The one key of the periodic run's lock: one run at a time, platform-wide.
LOCK_ID = 1


@contextmanager
def exclusive_run() -> Iterator[bool]:
    """Yield whether this run holds the periodic lock; another run holding it yields False.

    The lock lives in a session of its own, so nothing a job does to the default connection
    (an error, a reconnect) can drop it; closing that session releases it, as does the
    process dying.
    """
    session = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        yield locks.try_session_lock(locks.PERIODIC_RUN, LOCK_ID, connection=session)
    finally:
        session.close()


class Command(BaseCommand):
    help = (
        "Run every periodic job (pruning, expiry, purges) once, in order; exit non-zero if any "
        "failed. A second run while one is in progress exits at once."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("jobs", nargs="*", metavar="JOB", help="run only these jobs")
        parser.add_argument(
            "--list", action="store_true", dest="list_jobs", help="list the jobs and exit"
        )

    def handle(self, *args: Any, jobs: list[str], list_jobs: bool, **options: Any) -> None:
        names = set(jobs)
        jobs_in_order = registered_jobs()
        if list_jobs:
            for name, _ in jobs_in_order:
                self.stdout.write(name)
            return
        unknown = sorted(names - {name for name, _ in jobs_in_order})
        if unknown:
            raise CommandError(f"No periodic job named: {', '.join(unknown)}")
        selected = [(name, job) for name, job in jobs_in_order if not names or name in names]

        failed: list[str] = []
        with exclusive_run() as acquired:
            if not acquired:
                self.stdout.write("Another run_periodic is in progress; this run does nothing.")
                return
            for name, job in selected:
                # Each job on its own: one failing leaves the others to run.
                try:
                    outcome = job()
                except Exception as error:
                    logger.exception("Periodic job failed", extra={"job": name})
                    self.stderr.write(f"{name}: failed: {error}")
                    failed.append(name)
                    continue
                logger.info("Periodic job done", extra={"job": name, "outcome": outcome})
                self.stdout.write(
                    f"{name}: done" + (f" ({outcome})" if outcome is not None else "")
                )
        if failed:
            raise CommandError(f"Periodic jobs failed: {', '.join(failed)}")
