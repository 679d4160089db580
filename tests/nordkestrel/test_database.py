import pytest
from django.db import connection


@pytest.mark.django_db
def test_application_role_is_neither_superuser_nor_bypassrls():
    """Row-level security means nothing to a superuser or a BYPASSRLS role."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        user, is_superuser, bypasses_rls = cursor.fetchone()
    assert user != "postgres"
    assert is_superuser is False
    assert bypasses_rls is False


@pytest.mark.django_db
def test_database_is_postgresql():
    assert connection.vendor == "postgresql"
    assert connection.cursor().connection.info.server_version >= 150000
