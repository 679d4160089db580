"""``manage.py migrate`` runs as the schema's owner (the ``owner`` alias) unless told otherwise:
the application role may create nothing (nordkestrel/dbroles.py). Every query of the run goes
to that alias, data migrations that do not name one included (nordkestrel/dbrouting.py).
After it, the owner's grants are applied again (nordkestrel/dbgrants.py)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser
from django.core.management.commands.migrate import Command as MigrateCommand

from nordkestrel.dbrouting import OWNER, current_alias


class Command(MigrateCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.set_defaults(database=OWNER)

    def handle(self, *args: Any, **options: Any) -> None:
        token = current_alias.set(options["database"])
        try:
            super().handle(*args, **options)
        finally:
            current_alias.reset(token)
