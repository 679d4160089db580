"""The account purge: after the grace period nothing of the restaurant is left in any tenant
table or in storage, the other restaurant is untouched, the audit log stays verifiable, the
Stripe account is closed, and a purge interrupted half way finishes on the next run."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from django.core.management import call_command
from django.db import OperationalError
from django.forms.models import model_to_dict
from django.test import Client

from apikeys.models import ApiKeyRoute, ApiKeySettings
from audit.models import AuditAnchor, AuditEvent
from orders.checkout_request import parse_checkout
from orders.placement import place_order
from payments.models import AccountRoute, Payout, Refund, WebhookEvent
from promotions.models import Promotion
from restaurants import purge
from staff.roles import Role
from tenants.context import tenant_context
from tenants.models import DeletionRecord, OpeningException, Restaurant, TenantModel
from tests.factories import api_client, make_api_key, make_staff
from tests.payments.money_support import NOW, connect_cards, deliver, paid_order
from tests.security.objects import make_object
from tests.support.stripe_server import event

pytestmark = pytest.mark.django_db

AUDIT_TABLES = {"audit.auditevent", "audit.auditanchor"}
# Tables the fixture data below fills; the purge must empty each of them (and any other).
POPULATED = {
    "tenants.openinghours",
    "tenants.openingexception",
    "staff.staffmember",
    "menus.menu",
    "menus.category",
    "menus.item",
    "menus.categoryitem",
    "menus.modifiergroup",
    "menus.itemmodifiergroup",
    "menus.modifier",
    "menus.menuversion",
    "menus.storefrontmenustate",
    "customers.customer",
    "promotions.promotion",
    "promotions.redemption",
    "orders.order",
    "orders.orderline",
    "orders.statuschange",
    "orders.ordersequence",
    "payments.stripeaccount",
    "payments.payment",
    "payments.refund",
    "payments.dispute",
    "payments.payout",
    "events.event",
    "events.delivery",
    "apikeys.apikey",
    "apikeys.apikeysettings",
    "webhooks.endpoint",
    "webhooks.delivery",
    "webhooks.attempt",
}
WEBHOOK_TABLES = {"webhooks.endpoint", "webhooks.delivery", "webhooks.attempt"}


# --- Fixture data ----------------------------------------------------------------------------


@pytest.fixture
def file_storages(settings, tmp_path):
    """Every file storage (media, exports) in its own temporary folder."""
    settings.STORAGES = {
        alias: config
        if alias == "staticfiles"
        else {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / alias},
        }
        for alias, config in settings.STORAGES.items()
    }
    return tmp_path


def store_files(restaurant: Restaurant) -> list[str]:
    """An item image and a logo in the media storage, and an export file where exports go."""
    keys = [
        default_storage.save(f"restaurants/{restaurant.pk}/items/dish.webp", ContentFile(b"i")),
        default_storage.save(f"restaurants/{restaurant.pk}/logos/logo.webp", ContentFile(b"l")),
    ]
    exports = storages["exports"] if "exports" in storages.backends else default_storage
    exports.save(f"restaurants/{restaurant.pk}/exports/orders.csv", ContentFile(b"a,b\n"))
    return keys


def files_on_disk(root: Path, restaurant: Restaurant) -> list[str]:
    return sorted(
        str(path.relative_to(root))
        for path in root.glob(f"*/restaurants/{restaurant.pk}/**/*")
        if path.is_file()
    )


def populate(restaurant: Restaurant, roster: dict, stand_in: Any) -> dict[str, Any]:
    """A restaurant with rows in every kind of table, files, a Stripe account and webhooks."""
    slug = restaurant.slug
    ids = connect_cards(restaurant)
    stand_in._store({"id": ids["account"], "object": "account"})
    make_staff(restaurant, Role.KITCHEN, invited_by=roster[(slug, "owner")])
    with tenant_context(restaurant):
        OpeningException.objects.create(date=date(2026, 12, 24), note="Christmas Eve")
        Promotion.objects.create(code="SPRING", kind="percent", value=10)
    payment = paid_order(stand_in, restaurant, ids, email=f"ada@{slug}.example.com")
    with tenant_context(restaurant):
        body = {
            "lines": [{"item_id": ids["fries"], "quantity": 2}],
            "name": "Grace Hopper",
            "email": f"grace@{slug}.example.com",
            "promotion_code": "SPRING",
        }
        place_order(
            restaurant=restaurant,
            request=parse_checkout(body, restaurant.zone),
            idempotency_key="promo",
            now=NOW,
        )
        Refund.objects.create(
            payment=payment, refund_id=f"re_{slug}", amount=100, reason="Cold fries",
            refund_application_fee=True, status="succeeded", staff_label="Owner",
        )  # fmt: skip
        Payout.objects.create(payout_id=f"po_{slug}", amount=1000, currency="eur", status="paid")
    make_object("dispute", restaurant)
    make_api_key(roster[(slug, "owner")], grants={"orders": "read"})
    with tenant_context(restaurant):
        ApiKeySettings.objects.create(rate_limit_per_minute=100)
    charge = {
        "id": payment.charge_id,
        "object": "charge",
        "amount": payment.amount,
        "amount_refunded": 100,
        "currency": payment.currency.lower(),
        "payment_intent": payment.payment_intent_id,
        "refunded": False,
    }
    deliver(event("charge.refunded", charge, account=payment.account_id))
    populate_webhooks(restaurant)
    store_files(restaurant)
    return ids


def populate_webhooks(restaurant: Restaurant) -> None:
    """Webhook endpoints with deliveries and their attempts: a test message, and the
    restaurant's own events owed to an endpoint by the bus's subscriber."""
    from events.models import Event
    from webhooks import fanout
    from webhooks.models import Attempt, Delivery, Endpoint

    test_message = make_object("webhook_delivery", restaurant)
    with tenant_context(restaurant):
        endpoint = Endpoint.objects.get(pk=test_message.endpoint_id)
        published = list(Event.objects.order_by("occurred_at", "id")[:3])
        assert published, "the restaurant's orders published events"
        owed = sum(fanout.owe(row.as_event(), [endpoint]) for row in published)
        assert owed == len(published)
        for delivery in Delivery.objects.filter(event_id__isnull=False):
            Attempt.objects.create(
                delivery=delivery, endpoint=endpoint, attempted_at=NOW, status_code=503,
                duration_ms=5, response_body="busy",
            )  # fmt: skip


def tenant_rows(restaurant: Restaurant) -> dict[str, int]:
    """The restaurant's rows in every tenant table, counted across the tenant walls."""
    with tenant_context(restaurant):
        return {
            model._meta.label_lower: model.unscoped.filter(restaurant_id=restaurant.pk).count()
            for model in apps.get_models()
            if issubclass(model, TenantModel)
        }


def platform_rows(restaurant: Restaurant, account: str) -> dict[str, int]:
    """The restaurant's webhook routes and stored events (row-level security shows a routed
    event to its restaurant alone, an event not routed yet to anyone)."""
    with tenant_context(restaurant):
        return {
            "routes": AccountRoute.objects.filter(restaurant=restaurant).count()
            + ApiKeyRoute.objects.filter(restaurant=restaurant).count(),
            "webhook_events": WebhookEvent.objects.filter(restaurant=restaurant).count()
            + WebhookEvent.objects.filter(account_id=account).count(),
        }


def deletion_record(restaurant: Restaurant) -> DeletionRecord:
    """The restaurant's deletion record (row-level security: its restaurant's row)."""
    with tenant_context(restaurant):
        return DeletionRecord.objects.get(restaurant_id=restaurant.pk)


def request_deletion(roster: dict, django_capture_on_commit_callbacks: Any) -> Restaurant:
    owner = roster[("ours", "owner")]
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(owner).post(
            "/api/v1/restaurant/deletion", {"confirm_name": "Ours"}, content_type="application/json"
        )
    assert response.status_code == 200, response.content
    return Restaurant.objects.get(pk=owner.restaurant_id)


def due(restaurant: Restaurant, after: timedelta = timedelta(seconds=1)) -> datetime:
    """A moment ``after`` the restaurant's grace period ends."""
    assert restaurant.purge_after is not None
    return restaurant.purge_after + after


def audit_actions(restaurant: Restaurant) -> list[str]:
    with tenant_context(restaurant):
        return list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True))


@pytest.fixture
def populated(roster, restaurants, stripe_stand_in, file_storages):
    return {r.slug: populate(r, roster, stripe_stand_in) for r in restaurants}


# --- The purge -------------------------------------------------------------------------------


# Committed for real: each batch's transaction commits, so foreign keys (checked at commit)
# prove the order of the tables.
@pytest.mark.django_db(transaction=True)
def test_request_then_purge_leaves_nothing_of_the_restaurant(
    roster, restaurants, populated, stripe_stand_in, file_storages,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    ours, theirs = restaurants
    theirs_before = tenant_rows(theirs)
    theirs_platform = platform_rows(theirs, "acct_theirs")
    theirs_files = files_on_disk(file_storages, theirs)
    ours_before = tenant_rows(ours)
    assert {label for label, count in ours_before.items() if count} >= POPULATED
    assert platform_rows(ours, "acct_ours")["webhook_events"] > 0
    assert len(files_on_disk(file_storages, ours)) == 3
    restaurant = request_deletion(roster, django_capture_on_commit_callbacks)
    events_before = audit_actions(ours)

    # Not yet due: nothing happens.
    early = purge.purge_due_restaurants(now=due(restaurant, -timedelta(seconds=1)))
    assert early.purged == []
    assert tenant_rows(ours)["orders.order"] == ours_before["orders.order"]

    with django_capture_on_commit_callbacks(execute=True):
        report = purge.purge_due_restaurants(now=due(restaurant))

    assert report.purged == [ours.pk]
    after = tenant_rows(ours)
    left = {label: n for label, n in after.items() if n and label not in AUDIT_TABLES}
    assert left == {}, "nothing of the restaurant is left in any tenant table"
    # Named, so that the webhooks' tables leaving the walk above would fail here too.
    gone = {"events.event", "events.delivery", *WEBHOOK_TABLES}
    assert {label: after[label] for label in gone} == dict.fromkeys(gone, 0)
    assert files_on_disk(file_storages, ours) == []
    assert not list(file_storages.glob(f"*/restaurants/{ours.pk}")), "no folders left either"
    # The audit log outlives the restaurant, its chain intact, the purge recorded last.
    assert audit_actions(ours) == [*events_before, "restaurant.purged"]
    output = io.StringIO()
    call_command("audit_verify", restaurant="ours", stdout=output)
    assert "chain intact" in output.getvalue()
    # The other restaurant is untouched.
    assert tenant_rows(theirs) == theirs_before
    assert platform_rows(theirs, "acct_theirs") == theirs_platform
    assert files_on_disk(file_storages, theirs) == theirs_files
    # The Stripe account is closed and its events no longer route anywhere.
    [closed] = [r for r in stripe_stand_in.requests if r.method == "DELETE"]
    assert closed.path == "/v1/accounts/acct_ours"
    assert platform_rows(ours, "acct_ours") == {"routes": 0, "webhook_events": 0}
    # The row stays as a tombstone the audit log refers to, without contact details.
    tombstone = Restaurant.objects.get(pk=ours.pk)
    assert tombstone.status == Restaurant.Status.DELETED
    assert tombstone.clerk_organization_id is None
    assert (tombstone.phone, tombstone.logo, tombstone.address_line1) == ("", "", "")
    # Nobody signs in to it any more, and its storefront stays closed.
    owner = api_client(roster[("ours", "owner")]).get("/api/v1/me")
    assert owner.status_code == 403
    host = Client().get("/api/v1/storefront/menu", HTTP_HOST="ours.localhost")
    assert host.status_code == 404


def test_the_deletion_record_says_what_was_purged_without_personal_data(
    roster, restaurants, populated, django_capture_on_commit_callbacks
):
    ours = restaurants[0]
    purged_rows = {
        label: count
        for label, count in tenant_rows(ours).items()
        if count and label not in AUDIT_TABLES
    }
    restaurant = request_deletion(roster, django_capture_on_commit_callbacks)
    purge.purge_due_restaurants(now=due(restaurant, timedelta(days=1)))

    record = deletion_record(ours)
    assert record.slug == "ours"
    assert record.requested_at == restaurant.deletion_requested_at
    assert record.purge_after == restaurant.purge_after
    assert record.purged_at is not None
    assert record.row_counts == purged_rows
    assert record.files_deleted == 3
    assert record.outcomes["payments"]["stripe_accounts"] == {"acct_ours": "closed"}
    assert record.outcomes["payments"]["webhook_events_deleted"] >= 1
    text = json.dumps(model_to_dict(record), default=str)
    staff_emails = [m.email for (slug, _), m in roster.items() if slug == "ours"]
    for personal in ["Ours", "Ada", "Grace", "ada@ours", "grace@ours", *staff_emails]:
        assert personal not in text
    [purged] = [e for e in _events(ours) if e.action == "restaurant.purged"]
    assert purged.actor_type == "scheduler"
    assert purged.changes["rows_deleted"]["after"] == sum(purged_rows.values())


def _events(restaurant: Restaurant) -> list[AuditEvent]:
    with tenant_context(restaurant):
        return list(AuditEvent.objects.order_by("sequence"))


@pytest.mark.django_db(transaction=True)
def test_a_purge_interrupted_half_way_finishes_on_the_next_run(
    roster, restaurants, populated, stripe_stand_in, monkeypatch,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    ours = restaurants[0]
    expected = {
        label: n for label, n in tenant_rows(ours).items() if n and label not in AUDIT_TABLES
    }
    restaurant = request_deletion(roster, django_capture_on_commit_callbacks)
    later = due(restaurant, timedelta(hours=1))
    monkeypatch.setattr(purge, "BATCH_SIZE", 2)
    real_batch = purge._delete_batch
    batches: list[int] = []

    def crash_after_the_first_batch(*args: Any) -> int:
        if sum(batches):  # a batch has deleted rows (and committed): now the process dies
            raise OperationalError("server closed the connection unexpectedly")
        batches.append(real_batch(*args))
        return batches[-1]

    monkeypatch.setattr(purge, "_delete_batch", crash_after_the_first_batch)
    with pytest.raises(purge.PurgeFailed):
        purge.purge_due_restaurants(now=later)

    halfway = Restaurant.objects.get(pk=ours.pk)
    assert halfway.status == Restaurant.Status.PENDING_DELETION
    assert halfway.purge_started_at is not None
    deleted = sum(batches)
    remaining = sum(n for label, n in tenant_rows(ours).items() if label not in AUDIT_TABLES)
    assert 0 < remaining == sum(expected.values()) - deleted
    record = deletion_record(ours)
    assert record.purged_at is None and record.rows_deleted == deleted
    # Too late to cancel: the purge has begun.
    cancel = api_client(roster[("ours", "owner")]).delete("/api/v1/restaurant/deletion")
    assert cancel.status_code == 409
    assert cancel.json()["code"] == "purge_started"

    monkeypatch.setattr(purge, "_delete_batch", real_batch)
    report = purge.purge_due_restaurants(now=later)

    assert report.purged == [ours.pk]
    assert {n for label, n in tenant_rows(ours).items() if label not in AUDIT_TABLES} == {0}
    record = deletion_record(ours)
    assert record.purged_at is not None
    assert record.row_counts == expected, "every row counted once across both runs"
    assert len([r for r in stripe_stand_in.requests if r.method == "DELETE"]) == 1
    assert Restaurant.objects.get(pk=ours.pk).status == Restaurant.Status.DELETED


def test_purging_twice_is_harmless(
    roster, restaurants, populated, django_capture_on_commit_callbacks
):
    ours, theirs = restaurants
    restaurant = request_deletion(roster, django_capture_on_commit_callbacks)
    later = due(restaurant, timedelta(days=1))
    purge.purge_due_restaurants(now=later)
    record = model_to_dict(deletion_record(ours))
    theirs_rows = tenant_rows(theirs)

    assert purge.purge_due_restaurants(now=later).purged == []
    assert purge.purge_restaurant(ours.pk, now=later) is None

    assert audit_actions(ours).count("restaurant.purged") == 1
    assert model_to_dict(deletion_record(ours)) == record
    assert tenant_rows(theirs) == theirs_rows


def test_a_cancelled_deletion_is_never_purged(
    roster, restaurants, populated, django_capture_on_commit_callbacks
):
    ours = restaurants[0]
    before = tenant_rows(ours)
    request_deletion(roster, django_capture_on_commit_callbacks)
    cancel = api_client(roster[("ours", "owner")]).delete("/api/v1/restaurant/deletion")
    assert cancel.status_code == 200
    report = purge.purge_due_restaurants(now=NOW + timedelta(days=400))
    assert report.purged == []
    assert tenant_rows(ours)["orders.order"] == before["orders.order"]
    with tenant_context(ours):
        assert not DeletionRecord.objects.filter(restaurant_id=ours.pk).exists()


def test_stripe_refusing_to_close_the_account_does_not_stop_the_purge(
    roster, restaurants, populated, stripe_stand_in, django_capture_on_commit_callbacks
):
    ours = restaurants[0]
    restaurant = request_deletion(roster, django_capture_on_commit_callbacks)
    stripe_stand_in.fail(
        400, "invalid_request_error", "You cannot delete an account with a non-zero balance."
    )
    purge.purge_due_restaurants(now=due(restaurant, timedelta(days=1)))

    record = deletion_record(ours)
    assert record.purged_at is not None
    closure = record.outcomes["payments"]["stripe_accounts"]["acct_ours"]
    assert closure.startswith("not closed: ")
    assert "balance" in closure
    assert AccountRoute.objects.filter(restaurant=ours).count() == 0
    assert tenant_rows(ours)["payments.stripeaccount"] == 0


# --- Storage in an S3-compatible bucket --------------------------------------------------------


@pytest.fixture
def s3_bucket(s3_server, settings, tmp_path):
    options = {
        "bucket_name": "purge-files",
        "endpoint_url": s3_server,
        "access_key": "test-access-key",
        "secret_key": "test-secret-key",
        "region_name": "us-east-1",
        "signature_version": "s3v4",
        "default_acl": None,
        "file_overwrite": False,
    }
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id=options["access_key"],
        aws_secret_access_key=options["secret_key"],
        region_name=options["region_name"],
    )
    client.create_bucket(Bucket=options["bucket_name"])
    s3 = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
    settings.STORAGES = {
        alias: config if alias == "staticfiles" else s3
        for alias, config in settings.STORAGES.items()
    }
    yield client, options["bucket_name"]
    listed = client.list_objects_v2(Bucket=options["bucket_name"]).get("Contents", [])
    for entry in listed:
        client.delete_object(Bucket=options["bucket_name"], Key=entry["Key"])
    client.delete_bucket(Bucket=options["bucket_name"])


def test_the_purge_empties_the_restaurants_folder_in_the_bucket(
    roster, restaurants, s3_bucket, django_capture_on_commit_callbacks
):
    client, bucket = s3_bucket
    ours, theirs = restaurants
    for restaurant in restaurants:
        store_files(restaurant)

    def keys(restaurant: Restaurant) -> list[str]:
        prefix = f"restaurants/{restaurant.pk}/"
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return sorted(entry["Key"] for entry in listed)

    theirs_keys = keys(theirs)
    assert len(keys(ours)) == 3 and len(theirs_keys) == 3
    restaurant = request_deletion(roster, django_capture_on_commit_callbacks)
    purge.purge_due_restaurants(now=due(restaurant, timedelta(days=1)))

    assert keys(ours) == []
    assert keys(theirs) == theirs_keys
    assert deletion_record(ours).files_deleted == 3


# --- Which tables, in which order --------------------------------------------------------------


def test_every_tenant_table_but_the_audit_log_is_purged_children_first():
    order = purge.purged_models()
    tenant_models = {m for m in apps.get_models() if issubclass(m, TenantModel)}
    assert set(order) == tenant_models - {AuditEvent, AuditAnchor}
    position = {model: index for index, model in enumerate(order)}
    for model in order:
        for field in model._meta.concrete_fields:
            target = field.related_model
            if target in position and target is not model:
                assert position[model] < position[target], f"{model} before {target}"
    # Every reference to a purged row comes from a purged table, so deleting table by table
    # never leaves (or trips over) a dangling key.
    assert purge.unsupported_relations() == []


def test_run_periodic_purges_what_is_due(
    roster, restaurants, file_storages, django_capture_on_commit_callbacks
):
    ours = restaurants[0]
    restaurant = request_deletion(roster, django_capture_on_commit_callbacks)
    # The grace period ends (the scheduler's clock has moved on).
    Restaurant.objects.filter(pk=ours.pk).update(purge_after=due(restaurant, -timedelta(days=15)))
    output = io.StringIO()
    call_command("run_periodic", "account-purge", stdout=output)
    assert "account-purge: done (purged 1 restaurants)" in output.getvalue()
    assert Restaurant.objects.get(pk=ours.pk).status == Restaurant.Status.DELETED


def purge_while_stripe_is_down(stand_in: Any, restaurant: Restaurant) -> purge.PurgeReport:
    for _ in range(3):  # the first try and the SDK's two retries
        stand_in.fail(503, "api_error", "Stripe is unavailable.")
    return purge.purge_due_restaurants(now=due(restaurant, timedelta(days=1)))


def closure_requests(stand_in: Any) -> list[str]:
    return [r.path for r in stand_in.requests if r.method == "DELETE"]


def test_stripe_being_down_does_not_hold_up_the_purge(
    roster, restaurants, populated, stripe_stand_in, django_capture_on_commit_callbacks
):
    ours, theirs = restaurants
    theirs_rows = tenant_rows(theirs)
    restaurant = request_deletion(roster, django_capture_on_commit_callbacks)

    report = purge_while_stripe_is_down(stripe_stand_in, restaurant)

    # The data is purged on time all the same, and the run does not fail.
    assert report.purged == [ours.pk]
    assert report.still_pending == [ours.pk]
    left = {label: n for label, n in tenant_rows(ours).items() if n and label not in AUDIT_TABLES}
    assert left == {}
    assert platform_rows(ours, "acct_ours") == {"routes": 0, "webhook_events": 0}
    assert Restaurant.objects.get(pk=ours.pk).status == Restaurant.Status.DELETED
    assert tenant_rows(theirs) == theirs_rows
    # The record says the account's closure is still to be done.
    record = deletion_record(ours)
    assert record.purged_at is not None
    assert record.pending_steps == ["payments"]
    payments = record.outcomes["payments"]
    assert payments["pending"] == ["acct_ours"]
    assert payments["stripe_accounts"]["acct_ours"].startswith("pending: ")
    assert payments["webhook_events_deleted"] >= 1
    assert "payments pending" in str(record)
    assert closure_requests(stripe_stand_in) == ["/v1/accounts/acct_ours"] * 3


# Committed: the follow-up finds the pending closure across restaurants, as the platform role,
# on a connection of its own.
@pytest.mark.django_db(transaction=True)
def test_later_runs_retry_the_stripe_closure_alone_until_it_is_done(
    roster, restaurants, populated, stripe_stand_in, django_capture_on_commit_callbacks
):
    ours = restaurants[0]
    restaurant = request_deletion(roster, django_capture_on_commit_callbacks)
    purge_while_stripe_is_down(stripe_stand_in, restaurant)
    purged = model_to_dict(deletion_record(ours))
    events = audit_actions(ours)

    # Stripe is still down at the next run: the closure stays pending.
    for _ in range(3):
        stripe_stand_in.fail(503, "api_error", "Stripe is unavailable.")
    report = purge.purge_due_restaurants()
    assert (report.purged, report.followed_up, report.still_pending) == ([], [], [ours.pk])
    assert deletion_record(ours).pending_steps == ["payments"]
    assert len(closure_requests(stripe_stand_in)) == 6

    # Stripe is back: the periodic job closes the account and records it.
    output = io.StringIO()
    call_command("run_periodic", "account-purge", stdout=output)
    assert "account-purge: done (purged 0 restaurants; finished pending work of 1)" in (
        output.getvalue()
    )

    record = deletion_record(ours)
    assert record.outcomes["payments"]["stripe_accounts"] == {"acct_ours": "closed"}
    assert "pending" not in record.outcomes["payments"]
    assert record.pending_steps == []
    assert closure_requests(stripe_stand_in) == ["/v1/accounts/acct_ours"] * 7
    # Only the closure ran again: the purge itself is done and stays as it was.
    after = model_to_dict(record)
    assert {key: after[key] for key in after if key != "outcomes"} == {
        key: purged[key] for key in purged if key != "outcomes"
    }
    assert (
        record.outcomes["payments"]["webhook_events_deleted"]
        == purged["outcomes"]["payments"]["webhook_events_deleted"]
    )
    assert audit_actions(ours) == events
    assert Restaurant.objects.get(pk=ours.pk).status == Restaurant.Status.DELETED

    # Nothing is left to retry: later runs do not call Stripe.
    report = purge.purge_due_restaurants()
    assert (report.followed_up, report.still_pending) == ([], [])
    assert len(closure_requests(stripe_stand_in)) == 7
