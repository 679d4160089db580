"""Restaurants to order from for bench/order_placement.py, the order-placement benchmark.

Development only:

    .venv/bin/python manage.py bench_orders setup --restaurants 20 --items 80
    .venv/bin/python manage.py bench_orders queries

``setup`` creates ``bench-orders-1`` .. ``bench-orders-<n>``, each with an owner, a published
menu of ``--items`` items built as ``bench_menu`` builds it (kept when already published with
that many items), pickup only, no cap on orders per slot, and opening hours that hold from an
hour or two ago for 22 hours, every day; it deletes the orders and customers earlier runs
left there and prints, as JSON, each restaurant's host and a cart of three lines with options.
``queries`` prints the number of database queries one order takes, for carts of 1, 3 and 20
lines: through the checkout service (``place_order`` in the tenant context) and through the
storefront API.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from customers.models import Customer
from menus.management.commands.bench_menu import Command as BenchMenuCommand
from menus.models import Item, StorefrontMenuState
from menus.services import publish
from menus.storefront import live_menu
from nordkestrel.hosts import storefront_host
from orders.checkout_request import parse_checkout
from orders.models import Order, OrderLine, OrderSequence, StatusChange
from orders.placement import place_order
from promotions.models import Redemption
from staff.auth import Actor
from staff.models import StaffMember
from staff.roles import Role
from tenants.context import tenant_context
from tenants.models import OpeningException, OpeningHours, Restaurant

PREFIX = "bench-orders-"
LINE_COUNTS = (1, 3, 20)


def slugs(count: int) -> list[str]:
    return [f"{PREFIX}{n}" for n in range(1, count + 1)]


def host(slug: str) -> str:
    return storefront_host(slug)


def cart(restaurant: Restaurant, lines: int) -> list[dict[str, Any]]:
    """``lines`` different items from the live menu, each with one option from every group."""
    menu = live_menu(restaurant.pk)
    if menu is None:
        raise CommandError(f"{restaurant.slug} has no published menu; run setup first.")
    items, groups = menu.document["items"], menu.document["modifier_groups"]
    ordered = sorted(items.values(), key=lambda item: item["id"])
    if len(ordered) < lines:
        raise CommandError(f"{restaurant.slug} has fewer than {lines} items.")
    chosen = []
    for n, item in enumerate(ordered[:lines]):
        modifiers = [
            groups[str(group_id)]["modifiers"][n % len(groups[str(group_id)]["modifiers"])]["id"]
            for group_id in item["modifier_groups"]
            if groups.get(str(group_id), {}).get("modifiers")
        ]
        chosen.append({"item_id": item["id"], "quantity": 1 + n % 2, "modifier_ids": modifiers})
    return chosen


class Command(BaseCommand):
    help = "Restaurants and carts for the order-placement benchmark (development only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["setup", "queries"])
        parser.add_argument("--restaurants", type=int, default=20)
        parser.add_argument("--items", type=int, default=80)

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEV_AUTH:
            raise CommandError("bench_orders is for development only.")
        if options["restaurants"] < 1 or options["items"] < max(LINE_COUNTS):
            raise CommandError(f"Use at least 1 restaurant and {max(LINE_COUNTS)} items.")
        names = slugs(options["restaurants"])
        if options["action"] == "setup":
            carts = [self.setup(slug, options["items"]) for slug in names]
            self.stdout.write(json.dumps(carts))
        else:
            self.stdout.write(json.dumps(self.queries(Restaurant.objects.get(slug=names[0]))))

    def setup(self, slug: str, items: int) -> dict[str, Any]:
        restaurant, _ = Restaurant.objects.get_or_create(
            slug=slug,
            defaults={
                "name": slug.replace("-", " ").title(),
                "clerk_organization_id": f"org_bench_{slug.replace('-', '_')}",
                "timezone": "UTC",
                "currency": "EUR",
                "tax_rate": Decimal("14.000"),
            },
        )
        Restaurant.objects.filter(pk=restaurant.pk).update(
            status=Restaurant.Status.ACTIVE, pickup_enabled=True, orders_per_slot=None
        )
        restaurant.refresh_from_db()
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
            state = StorefrontMenuState.objects.filter(live_version__isnull=False).first()
            published = len(state.live_version.document["items"]) if state else 0
            if published != items or Item.objects.count() != items:
                actor = Actor(member=owner)
                BenchMenuCommand().build(actor, items)
                publish(actor=actor)
            self.open_now(restaurant)
            self.forget_orders(restaurant)
        return {"host": host(slug), "slug": slug, "lines": cart(restaurant, 3)}

    def open_now(self, restaurant: Restaurant) -> None:
        """Open every day from the last full hour but one until 22 hours later: a run that
        starts now can order as soon as possible throughout."""
        local = datetime.now(UTC).astimezone(restaurant.zone)
        opens = (local.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)).time()
        closes = (datetime.combine(local.date(), opens) + timedelta(hours=22)).time()
        OpeningException.objects.all().delete()
        OpeningHours.objects.all().delete()
        OpeningHours.objects.bulk_create(
            [OpeningHours(weekday=day, opens=opens, closes=closes) for day in range(7)]
        )

    def forget_orders(self, restaurant: Restaurant) -> None:
        """Earlier runs' orders and customers, so every run starts from the same tables."""
        models = [OrderLine, StatusChange, Redemption, Order, Customer, OrderSequence]
        with connection.cursor() as cursor:
            for model in models:
                cursor.execute(
                    f"DELETE FROM {model._meta.db_table} WHERE restaurant_id = %s",  # noqa: S608 - the model's table
                    [restaurant.pk],
                )

    def queries(self, restaurant: Restaurant) -> dict[str, dict[int, int]]:
        """Queries per order by cart size, after one warm-up order in each path (the first
        order in a process also reads and parses the menu document)."""
        service: dict[int, int] = {}
        api: dict[int, int] = {}
        try:
            url = reverse("api-storefront-checkout", urlconf="storefront.urls")
        except NoReverseMatch:
            url = ""
        client = Client(HTTP_HOST=host(restaurant.slug))
        for lines in (1, *LINE_COUNTS):
            body = {
                "lines": cart(restaurant, lines),
                "name": "Query Counter",
                "email": f"queries-{uuid.uuid4().hex[:12]}@bench.example.com",
                "tip": 100,
            }
            request = parse_checkout(body, restaurant.zone)
            with CaptureQueriesContext(connection) as captured:
                place_order(
                    restaurant=restaurant, request=request, idempotency_key=uuid.uuid4().hex
                )
            service[lines] = len(captured)
            if url:
                body["email"] = f"queries-{uuid.uuid4().hex[:12]}@bench.example.com"
                with CaptureQueriesContext(connection) as captured:
                    response = client.post(
                        url, body, content_type="application/json",
                        headers={"Idempotency-Key": uuid.uuid4().hex},
                    )  # fmt: skip
                if response.status_code != 201:
                    raise CommandError(f"checkout answered {response.status_code}: {response!r}")
                api[lines] = len(captured)
        return {"service": service, "api": api}
