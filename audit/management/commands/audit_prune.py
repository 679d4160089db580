"""Remove audit events older than 12 months, keeping every chain verifiable."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.services import prune_every_restaurant


class Command(BaseCommand):
    help = "Prune audit events past retention (12 months) for every restaurant."

    def handle(self, *args: Any, **options: Any) -> None:
        report = prune_every_restaurant()
        for slug, error in report.failed.items():
            self.stderr.write(f"{slug}: not pruned: {error}")
        for slug, removed in report.removed.items():
            self.stdout.write(f"{slug}: pruned {removed} events")
        self.stdout.write(f"Pruned {sum(report.removed.values())} events in all.")
        if report.failed:
            raise CommandError(f"Pruning failed for: {', '.join(report.failed)}")
