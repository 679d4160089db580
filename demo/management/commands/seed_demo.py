"""Demo data for development: two restaurants, a staff member of every role in each, opening
hours, a published menu to order from and a promotion code."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from menus import services as menus
from menus.models import Menu
from promotions.models import Promotion
from staff.auth import Actor
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
                        OpeningHours(weekday=day, opens=time(8), closes=time(23))
                        for day in range(7)
                    )
                owner = StaffMember.objects.get(
                    clerk_user_id=demo_user_id(restaurant.slug, Role.OWNER)
                )
                _seed_menu(Actor(member=owner), scale=10 if restaurant.currency == "SEK" else 1)
                if not Promotion.objects.exists():
                    Promotion.objects.create(
                        code="WELCOME10", kind=Promotion.Kind.PERCENT, value=10,
                        description="10 % off a first order", first_order_only=True,
                    )  # fmt: skip
            verb = "Created" if created else "Kept"
            self.stdout.write(f"{verb} {restaurant.name} ({restaurant.slug})")


DEMO_MENU = {
    "Mains": [
        ("Margherita", "Tomato, mozzarella, basil.", 1250, ["vegetarian"]),
        ("Salmon soup", "Creamy Nordic salmon soup with dill and rye bread.", 1450, []),
        ("Reindeer burger", "Sautéed reindeer, lingonberry mayo, pickles.", 1690, []),
    ],
    "Sides": [
        ("Fries", "Hand-cut, sea salt.", 450, ["vegan"]),
        ("Green salad", "Leaves, cucumber, house vinaigrette.", 550, ["vegan"]),
    ],
    "Drinks": [
        ("Lingonberry lemonade", "", 390, ["vegan"]),
        ("Sparkling water", "", 290, ["vegan"]),
    ],
}


def _seed_menu(actor: Actor, *, scale: int) -> None:
    """A small menu, published through the same services the dashboard uses."""
    if Menu.objects.exists():
        return
    menu = menus.menu_save(actor=actor, name="All day")
    size = menus.group_save(
        actor=actor, name="Size", min_selections=1, max_selections=1, required=True
    )
    menus.modifier_save(actor=actor, group_id=size.pk, name="Regular", price_delta=0)
    menus.modifier_save(actor=actor, group_id=size.pk, name="Large", price_delta=300 * scale)
    extras = menus.group_save(actor=actor, name="Extras", min_selections=0, max_selections=3)
    for name, delta in [("Extra cheese", 150), ("Chili oil", 50), ("Bacon", 250)]:
        menus.modifier_save(actor=actor, group_id=extras.pk, name=name, price_delta=delta * scale)
    for category_name, items in DEMO_MENU.items():
        category = menus.category_save(actor=actor, menu_id=menu.pk, name=category_name)
        for name, description, price, tags in items:
            groups = [size.pk, extras.pk] if category_name == "Mains" else []
            menus.item_save(
                actor=actor, categories=[category.pk], modifier_groups=groups, name=name,
                description=description, price=price * scale, dietary_tags=tags,
            )  # fmt: skip
    menus.publish(actor=actor)
