"""Remove audit events older than 12 months, keeping every chain verifiable."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from audit.services import prune
from tenants.context import tenant_context
from tenants.models import Restaurant


class Command(BaseCommand):
    help = "Prune audit events past retention (12 months) for every restaurant."

    def handle(self, *args: Any, **options: Any) -> None:
        total, failed = 0, []
        for restaurant in Restaurant.objects.order_by("pk"):
            try:
                with tenant_context(restaurant):
                    removed = prune()
            except DatabaseError as error:
                # One restaurant's trouble must not stop the others' pruning.
                self.stderr.write(f"{restaurant.slug}: not pruned: {error}")
                failed.append(restaurant.slug)
                continue
            if removed:
                self.stdout.write(f"{restaurant.slug}: pruned {removed} events")
            total += removed
        self.stdout.write(f"Pruned {total} events in all.")
        if failed:
            raise CommandError(f"Pruning failed for: {', '.join(failed)}")
