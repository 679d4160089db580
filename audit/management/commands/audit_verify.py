"""Walk each restaurant's audit chain; exit non-zero at the first broken link."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import verify_chain
from tenants.context import tenant_context
from tenants.models import Restaurant


class Command(BaseCommand):
    help = "Verify the audit log's hash chain (all restaurants, or one with --restaurant)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--restaurant", help="restaurant slug")

    def handle(self, *args: Any, **options: Any) -> None:
        restaurants = Restaurant.objects.order_by("pk")
        if options["restaurant"]:
            restaurants = restaurants.filter(slug=options["restaurant"])
            if not restaurants.exists():
                raise CommandError(f"No restaurant with slug {options['restaurant']!r}.")
        broken = []
        for restaurant in restaurants:
            with tenant_context(restaurant):
                checked, link = verify_chain()
            if link is None:
                self.stdout.write(f"{restaurant.slug}: {checked} events, chain intact")
            else:
                self.stdout.write(f"{restaurant.slug}: BROKEN at {link}")
                broken.append(restaurant.slug)
        if broken:
            raise CommandError(f"Audit chain broken for: {', '.join(broken)}")
