"""The audit log's retention, run by ``manage.py run_periodic``."""

from __future__ import annotations

import logging

from audit.services import prune_every_restaurant
from nordkestrel.periodic import periodic

logger = logging.getLogger(__name__)


@periodic("audit-prune")
def prune_audit_log() -> str:
    """Events past 12 months go; nothing is due most runs, so running often is cheap."""
    report = prune_every_restaurant()
    for slug, error in report.failed.items():
        logger.error("Audit log not pruned: %s", error, extra={"restaurant": slug})
    if report.failed:
        raise RuntimeError(f"audit pruning failed for: {', '.join(report.failed)}")
    return f"pruned {sum(report.removed.values())} events"
