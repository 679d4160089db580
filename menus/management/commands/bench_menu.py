"""A large published menu for the storefront benchmark (bench/storefront.py); development only.

    .venv/bin/python manage.py bench_menu --slug bench-menu --items 200

Creates the restaurant ``<slug>`` with an owner, one menu of ten categories, ``--items`` items
(each with a ~150-character description and two of twenty shared modifier groups of three
modifiers) and publishes it through the menu services, as the dashboard would. Running it
again reuses the published menu when it already has that many items (``--rebuild`` forces a
fresh draft and a new version); either way the storefront's revision is announced to the
configured cache, so a shared cache (Redis) never holds a stale one.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from menus import services, storefront
from menus.models import Item, Menu, ModifierGroup, StorefrontMenuState
from staff.auth import Actor
from staff.models import StaffMember
from staff.roles import Role
from tenants.context import tenant_context
from tenants.models import Restaurant

CATEGORIES = [
    "Starters", "Soups", "Salads", "Pasta", "Pizza", "Mains", "Grill", "Sides", "Desserts",
    "Drinks",
]  # fmt: skip
GROUPS = [
    "Size", "Sauce", "Side", "Spice level", "Bread", "Cheese", "Dressing", "Extras",
    "Cooking", "Topping", "Milk", "Syrup", "Crust", "Protein", "Garnish", "Dip", "Ice",
    "Portion", "Herbs", "Glaze",
]  # fmt: skip
WORDS = [
    "slow",
    "roasted",
    "tomato",
    "basil",
    "garlic",
    "olive",
    "oil",
    "sea",
    "salt",
    "black",
    "pepper",
    "fresh",
    "lemon",
    "thyme",
    "charred",
    "seasonal",
    "greens",
    "toasted",
    "hazelnut",
    "brown",
    "butter",
    "crisp",
    "shallot",
    "smoked",
    "paprika",
    "whipped",
    "ricotta",
    "house",
    "pickles",
    "wild",
    "mushroom",
    "rosemary",
    "honey",
    "glazed",
    "root",
    "vegetables",
]
DESCRIPTION_LENGTH = 150
TAGS = [[], ["vegan"], ["vegetarian"], ["gluten-free"], ["vegetarian", "nut-free"]]


def description(n: int) -> str:
    ending = ", served warm."
    text, index = "", n * 7
    while True:
        word = WORDS[index % len(WORDS)]
        if len(text) + 1 + len(word) + len(ending) > DESCRIPTION_LENGTH:
            return (text + ending).capitalize()
        text = f"{text} {word}" if text else word
        index += 3


class Command(BaseCommand):
    help = "Create and publish a large menu for the storefront benchmark (development only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", default="bench-menu")
        parser.add_argument("--items", type=int, default=200)
        parser.add_argument(
            "--rebuild", action="store_true", help="Replace the draft and publish a new version."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEV_AUTH:
            raise CommandError("bench_menu is for development only.")
        slug, count = options["slug"], options["items"]
        if count < 1:
            raise CommandError("--items must be at least 1.")
        restaurant, _ = Restaurant.objects.get_or_create(
            slug=slug,
            defaults={
                "name": slug.replace("-", " ").title(),
                "clerk_organization_id": f"org_bench_{slug.replace('-', '_')}",
                "timezone": "Europe/Helsinki",
                "currency": "EUR",
            },
        )
        if restaurant.status != Restaurant.Status.ACTIVE:
            raise CommandError(f"{slug} is not active, so its storefront does not answer.")
        with tenant_context(restaurant):
            owner, _ = StaffMember.objects.get_or_create(
                clerk_user_id=f"user_bench_{slug.replace('-', '_')}_owner",
                defaults={
                    "email": f"owner@{slug}.example.com",
                    "name": f"Owner of {restaurant.name}",
                    "role": Role.OWNER,
                    "joined_at": timezone.now(),
                },
            )
            actor = Actor(member=owner)
            state = StorefrontMenuState.objects.filter(live_version__isnull=False).first()
            published = len(state.live_version.document["items"]) if state else 0
            if options["rebuild"] or published != count or Item.objects.count() != count:
                self.build(actor, count)
                version, _ = services.publish(actor=actor)
                verb = f"Published version {version.number}"
            else:
                storefront.refresh_overlay()  # announces the live revision to the cache
                verb = "Kept the published version"
            state = StorefrontMenuState.objects.get()
        size = len(state.document_json.encode())
        self.stdout.write(
            f"{verb} of {restaurant.slug}: {count} items, published JSON {size:,} bytes "
            f"({size / 1024:.1f} KB)"
        )

    def build(self, actor: Actor, count: int) -> None:
        """A fresh draft: the old one (menus, items, modifier groups) is deleted first."""
        Menu.objects.all().delete()
        Item.objects.all().delete()
        ModifierGroup.objects.all().delete()
        menu = services.menu_save(actor=actor, name="All day", description="Served all day.")
        categories = [
            services.category_save(
                actor=actor, menu_id=menu.pk, name=name, description=f"Our {name.lower()}."
            )
            for name in CATEGORIES
        ]
        groups = []
        for n, name in enumerate(GROUPS):
            group = services.group_save(
                actor=actor, name=name, min_selections=n % 2, max_selections=1 + n % 3,
                required=n % 2 == 1,
            )  # fmt: skip
            for position, choice in enumerate(("Regular", "Large", "Extra large")):
                services.modifier_save(
                    actor=actor, group_id=group.pk, name=f"{choice} {name.lower()}",
                    price_delta=position * 150,
                )  # fmt: skip
            groups.append(group)
        for n in range(count):
            services.item_save(
                actor=actor,
                name=f"{CATEGORIES[n % len(CATEGORIES)].rstrip('s')} no. {n + 1}",
                description=description(n),
                price=800 + (n * 37) % 2400,
                dietary_tags=TAGS[n % len(TAGS)],
                categories=[categories[n % len(categories)].pk],
                modifier_groups=[groups[n % len(groups)].pk, groups[(n + 7) % len(groups)].pk],
            )
