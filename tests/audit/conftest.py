import psycopg
import pytest
from django.db import connection


@pytest.fixture
def privileged_sql():
    """Run SQL as the database superuser with triggers off: how a tamperer with full access
    (not the application) would edit the log. Used only to prove verification notices."""

    def run(sql, params=None):
        settings = connection.settings_dict
        host = settings["HOST"] or settings["OPTIONS"].get("host")
        with psycopg.connect(
            host=host,
            port=settings["PORT"] or None,
            user="postgres",
            dbname=settings["NAME"],
            autocommit=True,
            options="-c lock_timeout=5000",
        ) as privileged:
            privileged.execute("SET session_replication_role = replica")
            privileged.execute(sql, params)

    return run
