"""The keys' periodic jobs, run by ``manage.py run_periodic``."""

from __future__ import annotations

from apikeys import jobs
from nordkestrel.periodic import periodic


@periodic("api-key-usage")
def record_key_usage() -> str:
    """Move the keys' last-used marks from Redis into the database."""
    return f"recorded the last use of {jobs.record_usage()} keys"


@periodic("api-key-expiry-warnings")
def warn_expiring_keys() -> str:
    """Email the Owners of restaurants whose keys expire within 7 days (once per expiry)."""
    return f"warned about {jobs.warn_expiring()} keys"
