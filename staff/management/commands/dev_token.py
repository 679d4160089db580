"""Print a development session token: `dev_token --restaurant SLUG --role ROLE`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from staff.dev import mint_token
from staff.models import StaffMember
from staff.roles import Role
from tenants.context import tenant_bypass


class Command(BaseCommand):
    help = "Print a signed development token for a staff member (development only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--restaurant", help="restaurant slug")
        parser.add_argument("--role", choices=Role.values)
        parser.add_argument("--user", help="Clerk user id of the staff member")
        parser.add_argument("--hours", type=int, default=8, help="lifetime in hours")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEV_AUTH:
            raise CommandError("Development tokens do not exist in production.")
        if not options["user"] and not (options["restaurant"] and options["role"]):
            raise CommandError("Give --restaurant and --role, or --user.")
        with tenant_bypass():
            members = StaffMember.unscoped.select_related("restaurant").filter(
                active=True, clerk_user_id__isnull=False
            )
            if options["restaurant"]:
                members = members.filter(restaurant__slug=options["restaurant"])
            if options["role"]:
                members = members.filter(role=options["role"])
            if options["user"]:
                members = members.filter(clerk_user_id=options["user"])
            member = members.order_by("pk").first()
        if member is None or member.clerk_user_id is None:
            raise CommandError("No active staff member matches (run `manage.py seed_demo`?).")
        if not member.restaurant.clerk_organization_id:
            raise CommandError(f"{member.restaurant.slug} has no Clerk organization id.")
        self.stdout.write(
            mint_token(
                clerk_user_id=member.clerk_user_id,
                organization_id=member.restaurant.clerk_organization_id,
                email=member.email,
                lifetime_seconds=options["hours"] * 3600,
            )
        )
