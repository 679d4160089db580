"""``manage.py migrate`` runs as the schema's owner (the ``owner`` alias) unless told otherwise:
the application role may create nothing (nordkestrel/dbroles.py). After it, the owner's grants
are applied again (nordkestrel/dbgrants.py)."""

from __future__ import annotations

from django.core.management.base import CommandParser
from django.core.management.commands.migrate import Command as MigrateCommand

from nordkestrel.dbrouting import OWNER


class Command(MigrateCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.set_defaults(database=OWNER)
