"""``manage.py run_webhooks``: the sender of outbound webhooks (webhooks/sender.py), run beside
``db_worker``; several may run at once."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webhooks import sender


class Command(BaseCommand):
    help = "Send due webhook deliveries until stopped (SIGINT/SIGTERM let requests finish)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency", type=int, default=None, help="Requests in flight at most."
        )
        parser.add_argument(
            "--until-idle",
            action="store_true",
            help="Stop once nothing is due or in flight (tests, one-off catch-up).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["until_idle"]:
            sent = asyncio.run(
                sender.Sender(concurrency=options["concurrency"]).run(until_idle=True)
            )
            self.stdout.write(f"{sent} attempts")
            return
        sender.run_forever(concurrency=options["concurrency"])
