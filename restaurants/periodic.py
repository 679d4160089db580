"""The account purge, run by ``manage.py run_periodic``."""

from __future__ import annotations

from nordkestrel.periodic import periodic
from restaurants.purge import purge_due_restaurants


@periodic("account-purge")
def purge_deleted_accounts() -> str:
    """Restaurants whose grace period is over lose their data; an interrupted purge resumes;
    what a purge left pending outside the database (Stripe down) is retried.

    Nothing is due most runs, so running often is cheap (and keeps the promised 30 days).
    """
    report = purge_due_restaurants()
    outcome = f"purged {len(report.purged)} restaurants"
    if report.followed_up:
        outcome += f"; finished pending work of {len(report.followed_up)}"
    if report.still_pending:
        outcome += f"; work outside the database still pending for {len(report.still_pending)}"
    return outcome
