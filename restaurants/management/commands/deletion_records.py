"""``manage.py deletion_records [--pending]``: what each account purge removed, and what it
still owes outside the database (a Stripe account to close).

The records belong to restaurants that are gone, so they are read as the platform role,
which only workers and management commands hold (README, "Database roles"); the admin,
served by web processes, does not list them."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tenants.context import tenant_bypass
from tenants.models import DeletionRecord


class Command(BaseCommand):
    help = "List the account purges' records (newest first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--pending", action="store_true", help="only those with work still pending"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with tenant_bypass():
            records = list(DeletionRecord.objects.order_by("-purge_started_at", "-pk"))
        for record in records:
            if options["pending"] and not record.pending_steps:
                continue
            self.stdout.write(str(record))
            details = {
                "rows": record.row_counts,
                "files": record.files_deleted,
                "outcomes": record.outcomes,
            }
            self.stdout.write("  " + json.dumps(details, sort_keys=True, default=str))
