"""Demo data for development: two restaurants, a staff member of every role in each."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from staff.models import StaffMember
from staff.roles import Role
from tenants.context import tenant_context
from tenants.models import OpeningHours, Restaurant

DEMO_RESTAURANTS = [
    {
        "slug": "trattoria-nord",
        "name": "Trattoria Nord",
        "clerk_organization_id": "org_demo_trattoria",
        "timezone": "Europe/Helsinki",
        "currency": "EUR",
        "city": "Helsinki",
        "country": "FI",
        "tax_rate": Decimal("14.000"),
    },
    {
        "slug": "kestrel-noodles",
        "name": "Kestrel Noodle Bar",
        "clerk_organization_id": "org_demo_noodles",
        "timezone": "Europe/Stockholm",
        "currency": "SEK",
        "city": "Stockholm",
        "country": "SE",
        "tax_rate": Decimal("12.000"),
    },
]
# Works at both restaurants: Owner of the first, Manager of the second (restaurant switcher).
MULTI_RESTAURANT_USER = "user_demo_multi"


def demo_user_id(slug: str, role: str) -> str:
    return f"user_demo_{slug.replace('-', '_')}_{role}"


class Command(BaseCommand):
    help = "Create the demo restaurants and staff (idempotent; development only)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEV_AUTH:
            raise CommandError("seed_demo is for development only.")
        for index, data in enumerate(DEMO_RESTAURANTS):
            restaurant, created = Restaurant.objects.get_or_create(
                slug=data["slug"], defaults={**data}
            )
            with tenant_context(restaurant):
                for role in Role:
                    clerk_user_id = demo_user_id(restaurant.slug, role)
                    StaffMember.objects.get_or_create(
                        clerk_user_id=clerk_user_id,
                        defaults={
                            "email": f"{role}@{restaurant.slug}.example.com",
                            "name": f"{role.label} at {restaurant.name}",
                            "role": role,
                            "joined_at": timezone.now(),
                        },
                    )
                StaffMember.objects.get_or_create(
                    clerk_user_id=MULTI_RESTAURANT_USER,
                    defaults={
                        "email": "sam@multi.example.com",
                        "name": "Sam Multi",
                        "role": Role.OWNER if index == 0 else Role.MANAGER,
                        "joined_at": timezone.now(),
                    },
                )
                if not OpeningHours.objects.exists():
                    OpeningHours.objects.bulk_create(
                        OpeningHours(weekday=day, opens=time(11), closes=time(22))
                        for day in range(7)
                    )
            verb = "Created" if created else "Kept"
            self.stdout.write(f"{verb} {restaurant.name} ({restaurant.slug})")
