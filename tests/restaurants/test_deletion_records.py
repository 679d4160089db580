"""``manage.py deletion_records``: the purges' records, read as the platform role."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from tenants.context import tenant_context
from tenants.models import DeletionRecord
from tests.factories import make_restaurant

# The command reads as the platform role, on its own connection: committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


def record(restaurant, **fields):
    now = timezone.now()
    with tenant_context(restaurant):
        return DeletionRecord.objects.create(
            restaurant_id=restaurant.pk, slug=restaurant.slug, requested_at=now,
            purge_after=now, purge_started_at=now, **fields,
        )  # fmt: skip


def listed(*args):
    out = StringIO()
    call_command("deletion_records", *args, stdout=out)
    return out.getvalue()


def test_every_restaurants_record_is_listed_with_what_was_purged():
    gone, closed = make_restaurant("gone"), make_restaurant("closed")
    record(gone, row_counts={"orders.order": 12}, files_deleted=3, purged_at=timezone.now())
    record(closed, outcomes={"payments": {"pending": "acct_1"}})
    output = listed()
    assert f"restaurant {gone.pk} (gone): purged" in output
    assert '"orders.order": 12' in output and '"files": 3' in output
    assert f"restaurant {closed.pk} (closed): purge in progress, payments pending" in output


def test_pending_lists_only_records_with_work_left():
    gone, closed = make_restaurant("gone"), make_restaurant("closed")
    record(gone, purged_at=timezone.now())
    record(closed, outcomes={"payments": {"pending": "acct_1"}})
    output = listed("--pending")
    assert f"restaurant {closed.pk}" in output
    assert f"restaurant {gone.pk}" not in output


def test_the_admin_no_longer_lists_them():
    """Web processes have no platform role: the records are not an admin page."""
    from django.contrib import admin

    assert DeletionRecord not in admin.site._registry
