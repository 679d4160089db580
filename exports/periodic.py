"""Housekeeping for exports, run by ``manage.py run_periodic``."""

from __future__ import annotations

from exports.services import exports_expire
from nordkestrel.periodic import periodic


@periodic("exports-expire")
def expire_exports() -> int:
    """Delete export files and their records past their 7 days."""
    return exports_expire()
