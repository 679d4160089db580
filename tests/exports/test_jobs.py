"""Background exports: the real worker writes the file into the S3-compatible server on
loopback; progress, the signed short-lived link, the email, the zip bundle, failures, running
twice, roles, the restaurant boundary, the rate limit, the audit event and expiry."""

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from exports import registry, tasks
from exports.copy import file_name, stream_csv
from exports.models import Export
from exports.periodic import expire_exports
from exports.services import exports_expire
from nordkestrel.periodic import registered_jobs
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.exports.conftest import place
from tests.factories import api_client

BUCKET = "nordkestrel-exports"
KEY = re.compile(r"restaurants/(\d+)/exports/[A-Za-z0-9_-]{32}\.(csv|zip)")
ERROR_KEYS = {"type", "code", "detail", "attr"}


# --- The S3-compatible server on loopback ----------------------------------------------------


class Bucket:
    def __init__(self, client, name):
        self.client = client
        self.name = name

    def stored(self):
        listed = self.client.list_objects_v2(Bucket=self.name).get("Contents", [])
        return sorted(entry["Key"] for entry in listed)

    def read(self, key):
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()


@pytest.fixture
def bucket(s3_server, settings):
    """Export files go to a private bucket, through django-storages' S3 backend as in
    production (settings.EXPORTS_STORAGE)."""
    options = {
        "bucket_name": BUCKET,
        "endpoint_url": s3_server,
        "access_key": "test-access-key",
        "secret_key": "test-secret-key",
        "region_name": "us-east-1",
        "signature_version": "s3v4",
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": settings.EXPORT_LINK_SECONDS,
        "file_overwrite": False,
        "custom_domain": None,
        "object_parameters": {"CacheControl": "private, no-store"},
    }
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id=options["access_key"],
        aws_secret_access_key=options["secret_key"],
        region_name=options["region_name"],
    )
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }
    yield Bucket(client, BUCKET)
    for key in Bucket(client, BUCKET).stored():
        client.delete_object(Bucket=BUCKET, Key=key)
    client.delete_bucket(Bucket=BUCKET)


# --- Helpers ---------------------------------------------------------------------------------


@pytest.fixture
def orders(db_tasks, shops, restaurants):
    """Two orders in ours, one in theirs: the other restaurant's must never show. Their
    emails are sent first, so the test sees only what exports do."""
    ours, theirs = restaurants
    place(ours, shops["ours"], name="Ada Ours", email="ada@ours.example")
    place(ours, shops["ours"], name="Bob Ours", email="bob@ours.example")
    place(theirs, shops["theirs"], name="Eve Theirs", email="eve@theirs.example")
    db_tasks.run()
    mail.outbox.clear()


def owner_of(roster, slug="ours"):
    return roster[(slug, "owner")]


def start(member, export_type="orders", **body):
    return api_client(member).post(
        reverse("api-export-jobs"), {"type": export_type, **body}, content_type="application/json"
    )


def job(member, pk):
    return api_client(member).get(reverse("api-export-job", kwargs={"pk": pk}))


def records(restaurant):
    with tenant_context(restaurant):
        return list(Export.objects.order_by("pk"))


def export_events(restaurant):
    with tenant_context(restaurant):
        return list(AuditEvent.objects.filter(action="export.created").order_by("sequence"))


def csv_rows(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"), newline="")))


def set_fields(restaurant, pk, **fields):
    with tenant_context(restaurant):
        Export.objects.filter(pk=pk).update(**fields)


# --- End to end ------------------------------------------------------------------------------


def test_the_worker_writes_the_export_into_the_bucket_and_emails_the_requester(
    db_tasks, orders, roster, restaurants, bucket, monkeypatch
):
    ours, _ = restaurants
    owner = owner_of(roster)
    statuses_while_streaming = []
    real_stream = stream_csv

    def watched(**kwargs):
        with tenant_context(ours):
            statuses_while_streaming.append(Export.objects.get().status)
        yield from real_stream(**kwargs)

    monkeypatch.setattr("exports.tasks.stream_csv", watched)

    response = start(owner, "orders", filters={"status": ["placed"]})

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["status"] == "queued"
    assert created["type"] == "orders"
    assert created["filters"] == {"status": ["placed"]}
    assert "download_url" not in created
    assert [row.task_path for row in db_tasks.queued()] == ["exports.tasks.run_export"]
    assert bucket.stored() == [], "nothing is written before the worker runs"
    assert job(owner, created["id"]).json()["download_url"] is None

    (result,) = db_tasks.run()

    assert result.return_value == "done"
    assert statuses_while_streaming == ["running"]
    detail = job(owner, created["id"]).json()
    assert detail["status"] == "done"
    assert (detail["rows_written"], detail["percent"]) == (2, 100)
    assert detail["error"] == ""
    # The file: in this restaurant's folder, under an unguessable key, this restaurant's rows.
    (key,) = bucket.stored()
    matched = KEY.fullmatch(key)
    assert matched and matched.group(1) == str(ours.pk)
    content = bucket.read(key)
    assert detail["size"] == len(content)
    assert detail["file_name"] == file_name(ours, registry.get("orders"))
    rows = csv_rows(content)
    assert [row["contact_name"] for row in rows] == ["Ada Ours", "Bob Ours"]
    assert list(rows[0]) == registry.get("orders").column_names
    assert b"Eve" not in content and b"theirs" not in content
    # The link: a presigned GET of this object, valid for five minutes, named for download.
    url = detail["download_url"]
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.path == f"/{BUCKET}/{key}"
    assert query["X-Amz-Expires"] == ["300"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith("test-access-key/")
    assert query["X-Amz-Signature"][0]
    assert query["response-content-disposition"] == [
        f'attachment; filename="{detail["file_name"]}"'
    ]
    with urllib.request.urlopen(url, timeout=10) as fetched:  # noqa: S310 (loopback server)
        assert fetched.read() == content
    # The email: to the member who asked, with the dashboard's page, never the file's link.
    (message,) = mail.outbox
    assert message.to == [owner.email]
    assert "ready" in message.subject
    assert "http://testserver/dashboard/exports" in message.body
    assert key not in message.body and "X-Amz" not in message.body
    # Audited once, naming the export.
    (event,) = export_events(ours)
    assert event.target_id == str(created["id"])
    assert event.changes["export_type"]["after"] == "orders"


def test_progress_is_visible_while_the_export_runs(
    db_tasks, roster, restaurants, bucket, monkeypatch
):
    """The COPY runs in one long transaction; progress is committed beside it, so the page
    polling the record sees it before the export ends."""
    ours, _ = restaurants
    monkeypatch.setattr(tasks, "PROGRESS_SECONDS", 0.01)
    seen = []

    def slow_stream(**kwargs):
        yield b"id\r\n"
        kwargs["progress"](5)
        with tenant_context(ours):
            pk = Export.objects.get().pk
        for _ in range(1000):  # up to 10 s for the progress thread's first write
            with tenant_context(ours):
                written = Export.objects.get(pk=pk).rows_written
            if written:
                break
            time.sleep(0.01)
        seen.append(written)
        yield b"1\r\n"
        kwargs["progress"](6)

    monkeypatch.setattr("exports.tasks.stream_csv", slow_stream)
    start(owner_of(roster), "customers")
    db_tasks.run()

    assert seen == [5]
    (export,) = records(ours)
    assert (export.status, export.rows_written) == (Export.Status.DONE, 6)


def test_the_everything_bundle_is_a_zip_with_one_csv_per_type(
    db_tasks, orders, roster, restaurants, bucket
):
    ours, _ = restaurants
    owner = owner_of(roster)
    response = start(owner, "everything", filters={"date_from": "2026-01-01"}, bom=True)
    assert response.status_code == 201, response.content

    db_tasks.run()

    detail = job(owner, response.json()["id"]).json()
    assert (detail["status"], detail["percent"]) == ("done", 100)
    assert re.fullmatch(r"ours-everything-\d{4}-\d{2}-\d{2}\.zip", detail["file_name"])
    (key,) = bucket.stored()
    assert key.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(bucket.read(key))) as archive:
        names = archive.namelist()
        contents = {name: archive.read(name) for name in names}
    types = registry.export_types()
    assert names == [file_name(ours, export_type) for export_type in types]
    for export_type in types:
        content = contents[file_name(ours, export_type)]
        assert content.startswith(b"\xef\xbb\xbf"), "each CSV carries the BOM asked for"
        assert next(csv.reader(io.StringIO(content[3:].decode("utf-8")))) == (
            export_type.column_names
        )
        assert b"Eve" not in content and b"theirs" not in content
    orders_csv = contents[file_name(ours, registry.get("orders"))][3:]
    assert [row["contact_name"] for row in csv_rows(orders_csv)] == ["Ada Ours", "Bob Ours"]
    assert detail["rows_written"] == sum(
        len(csv_rows(content[3:])) for content in contents.values()
    )
    (message,) = mail.outbox
    assert message.subject == "Ours: your full export is ready"
    (event,) = export_events(ours)
    assert event.changes["export_type"]["after"] == "everything"


def test_running_the_same_export_twice_writes_one_file_and_one_email(
    db_tasks, roster, restaurants, bucket
):
    ours, _ = restaurants
    created = start(owner_of(roster), "customers").json()
    tasks.run_export.enqueue(restaurant_id=ours.pk, export_id=created["id"])

    results = db_tasks.run()

    assert [result.return_value for result in results] == ["done", "skipped"]
    assert len(bucket.stored()) == 1
    assert len(mail.outbox) == 1
    (export,) = records(ours)
    assert export.file_key == bucket.stored()[0]


def test_a_run_that_died_with_its_worker_is_taken_over(db_tasks, roster, restaurants, bucket):
    ours, _ = restaurants
    created = start(owner_of(roster), "customers").json()
    (queued,) = db_tasks.queued()
    queued.delete()
    # A worker claimed it, then stopped reporting long ago.
    set_fields(
        ours, created["id"], status="running", run_token="dead",
        heartbeat_at=timezone.now() - timedelta(minutes=30),
    )  # fmt: skip
    tasks.run_export.enqueue(restaurant_id=ours.pk, export_id=created["id"])

    (result,) = db_tasks.run()

    assert result.return_value == "done"
    (export,) = records(ours)
    assert export.status == Export.Status.DONE and export.run_token != "dead"
    assert bucket.stored() == [export.file_key]


def test_a_running_export_is_not_started_again(db_tasks, roster, restaurants, bucket):
    ours, _ = restaurants
    created = start(owner_of(roster), "customers").json()
    set_fields(ours, created["id"], status="running", heartbeat_at=timezone.now())

    (result,) = db_tasks.run()

    assert result.return_value == "skipped"
    assert bucket.stored() == []
    assert mail.outbox == []


# --- Failures --------------------------------------------------------------------------------


def test_a_failing_export_is_marked_failed_and_leaves_no_file(
    db_tasks, orders, roster, bucket, monkeypatch
):
    owner = owner_of(roster)

    def breaks_half_way(**kwargs):
        yield b"id,number\r\n1,1\r\n"
        raise RuntimeError("the database went away")

    monkeypatch.setattr("exports.tasks.stream_csv", breaks_half_way)
    created = start(owner, "orders").json()

    (result,) = db_tasks.run(expect_failures=True)

    assert result.status == "FAILED"
    assert "the database went away" in result.errors[0].traceback
    detail = job(owner, created["id"]).json()
    assert detail["status"] == "failed"
    assert detail["error"] == tasks.FAILURE_MESSAGE
    assert "database" not in detail["error"], "internals stay in the log"
    assert (detail["size"], detail["download_url"]) == (None, None)
    assert bucket.stored() == []
    (message,) = mail.outbox
    assert message.to == [owner.email] and "failed" in message.subject


def test_a_file_stored_by_a_run_that_then_fails_is_deleted(
    db_tasks, roster, restaurants, bucket, monkeypatch
):
    ours, _ = restaurants

    def cannot_finish(*args, **kwargs):
        assert len(bucket.stored()) == 1, "the file was stored"
        raise RuntimeError("lost the database before marking it done")

    monkeypatch.setattr(tasks, "_finish", cannot_finish)
    start(owner_of(roster), "customers")

    db_tasks.run(expect_failures=True)

    assert bucket.stored() == []
    (export,) = records(ours)
    assert (export.status, export.file_key) == (Export.Status.FAILED, "")


# --- Who may ask, and for what ---------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["manager", "cashier", "kitchen"])
def test_roles_without_the_export_scope_get_403(roster, restaurants, role):
    ours, _ = restaurants
    member = roster[("ours", role)]
    with tenant_context(ours):
        export = Export.objects.create(
            export_type="orders", expires_at=timezone.now() + timedelta(days=7)
        )
    for response in (
        start(member, "orders"),
        api_client(member).get(reverse("api-export-jobs")),
        job(member, export.pk),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
    assert records(ours) == [export]


@pytest.mark.django_db
def test_another_restaurants_export_is_404_and_never_listed(roster, restaurants):
    _, theirs = restaurants
    start(owner_of(roster, "theirs"), "customers")
    (their_export,) = records(theirs)
    owner = owner_of(roster)

    response = job(owner, their_export.pk)

    assert response.status_code == 404
    assert response.json() == job(owner, 999_999_999).json()
    assert api_client(owner).get(reverse("api-export-jobs")).json()["results"] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"type": "receipts"}, "type"),
        ({"type": ""}, "type"),
        ({"type": 7}, "type"),
        ({"type": "customers", "filters": {"status": ["placed"]}}, "status"),
        ({"type": "orders", "filters": {"status": ["eaten"]}}, "status"),
        ({"type": "orders", "filters": {"date_from": "yesterday"}}, "date_from"),
        ({"type": "orders", "filters": {"date_from": "2026-05-02", "date_to": "2026-05-01"}},
         "date_to"),
        ({"type": "orders", "filters": {"restaurant": 2}}, "restaurant"),
        ({"type": "orders", "filters": {"date_from": 20260501}}, "date_from"),
        ({"type": "orders", "filters": "status=placed"}, "filters"),
        ({"type": "everything", "filters": {"status": "placed"}}, "status"),
        ({"type": "orders", "bom": "yes"}, "bom"),
        ({"type": "orders", "restaurant": 2}, "restaurant"),
    ],
)  # fmt: skip
def test_bad_requests_are_400_naming_the_field_and_start_nothing(roster, restaurants, body, attr):
    ours, _ = restaurants
    response = api_client(owner_of(roster)).post(
        reverse("api-export-jobs"), body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert set(response.json()) == ERROR_KEYS | {"errors"}
    assert response.json()["attr"] == attr
    assert records(ours) == []
    assert export_events(ours) == []


@pytest.mark.django_db
def test_a_restaurant_pending_deletion_can_still_take_its_data(roster, restaurants):
    ours, _ = restaurants
    ours.status = Restaurant.Status.PENDING_DELETION
    ours.save(update_fields=["status"])

    assert start(owner_of(roster), "everything").status_code == 201
    assert len(records(ours)) == 1


@pytest.mark.django_db
def test_the_rate_limit_is_per_restaurant(roster, restaurants, settings, frozen_ratelimit_clock):
    ours, _ = restaurants
    settings.EXPORT_RATE_PER_RESTAURANT = "2/h"
    assert start(owner_of(roster), "orders").status_code == 201
    assert start(roster[("ours", "admin")], "customers").status_code == 201

    refused = start(owner_of(roster), "menus")

    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert int(refused["Retry-After"]) > 0
    assert len(records(ours)) == 2
    assert len(export_events(ours)) == 2, "a refused export is not audited"
    # Another restaurant has its own budget.
    assert start(owner_of(roster, "theirs"), "orders").status_code == 201


# --- Expiry ----------------------------------------------------------------------------------


def test_files_and_records_past_their_seven_days_are_deleted(db_tasks, roster, restaurants, bucket):
    ours, theirs = restaurants
    old = start(owner_of(roster), "customers").json()
    fresh = start(owner_of(roster), "menus").json()
    their_old = start(owner_of(roster, "theirs"), "customers").json()
    db_tasks.run()
    with tenant_context(ours):
        old_key = Export.objects.get(pk=old["id"]).file_key
        fresh_key = Export.objects.get(pk=fresh["id"]).file_key
    assert len(bucket.stored()) == 3
    past = timezone.now() - timedelta(seconds=1)
    set_fields(ours, old["id"], expires_at=past)
    set_fields(theirs, their_old["id"], expires_at=past)
    # Past its time, it is refused at once, before the job has run.
    assert job(owner_of(roster), old["id"]).json()["download_url"] is None
    assert job(owner_of(roster), old["id"]).json()["expired"] is True

    assert expire_exports() == 2

    assert old_key not in bucket.stored()
    assert bucket.stored() == [fresh_key]
    kept = set()
    for restaurant in Restaurant.objects.all():
        with tenant_context(restaurant):
            kept |= set(Export.objects.values_list("pk", flat=True))
    assert kept == {fresh["id"]}
    assert job(owner_of(roster), old["id"]).status_code == 404
    assert exports_expire() == 0, "running it again finds nothing"
    # Kept for seven days from when the file was ready.
    (kept,) = records(ours)
    assert kept.expires_at - kept.finished_at == timedelta(days=7)


def test_expiry_is_a_periodic_job():
    assert ("exports-expire", expire_exports) in registered_jobs()


# --- Storage settings ------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
R2 = {
    "R2_BUCKET": "menu-images",
    "R2_ENDPOINT_URL": "https://account.r2.cloudflarestorage.com",
    "R2_ACCESS_KEY_ID": "key-id",
    "R2_SECRET_ACCESS_KEY": "secret",
}


def exports_storage_with(**env):
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps(s.STORAGES['exports'], default=str))"
    )
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("R2_")},
        "DJANGO_SETTINGS_MODULE": "nordkestrel.settings",
        "DATABASE_URL": "postgres://app@db.internal:5432/nordkestrel",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_exports_go_to_a_private_bucket_with_short_lived_links():
    result = exports_storage_with(**R2, R2_EXPORTS_BUCKET="private-exports")
    assert result.returncode == 0, result.stderr
    storage = json.loads(result.stdout.strip().splitlines()[-1])
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    options = storage["OPTIONS"]
    assert options["bucket_name"] == "private-exports"
    assert (options["querystring_auth"], options["querystring_expire"]) == (True, 300)
    assert options["custom_domain"] is None and options["default_acl"] is None


def test_a_public_media_bucket_is_never_used_for_exports():
    public = exports_storage_with(**R2, R2_PUBLIC_BASE_URL="https://images.nordkestrel.com")
    assert public.returncode != 0
    assert "ImproperlyConfigured" in public.stderr and "R2_EXPORTS_BUCKET" in public.stderr
    # Without a public domain, the media bucket is private: exports may share it.
    private = exports_storage_with(**R2)
    assert private.returncode == 0, private.stderr
    options = json.loads(private.stdout.strip().splitlines()[-1])["OPTIONS"]
    assert options["bucket_name"] == "menu-images" and options["custom_domain"] is None
