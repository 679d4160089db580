"""The account purge, run by ``manage.py run_periodic``."""

from __future__ import annotations

from nordkestrel.periodic import periodic
from tenants.purge import purge_due_restaurants


@periodic("account-purge")
def purge_deleted_accounts() -> str:
    """Restaurants whose grace period is over lose their data; an interrupted purge resumes.

    Nothing is due most runs, so running often is cheap (and keeps the promised 30 days).
    """
    report = purge_due_restaurants()
    return f"purged {len(report.purged)} restaurants"
