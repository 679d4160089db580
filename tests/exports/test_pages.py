"""The dashboard's exports page: types and filters, "Download now", "Prepare in background"
with its progress, past exports and their download button, the signed and expiring file link
of development storage, and who may use any of it."""

import csv
import io
import re
from pathlib import Path

import pytest
from django.core import mail, signing
from django.core.files.storage import FileSystemStorage, storages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from exports import registry
from exports.models import Export
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.exports.conftest import place
from tests.factories import token_for

PAGE = "/dashboard/exports"

pytestmark = pytest.mark.django_db


@pytest.fixture
def disk(settings, tmp_path):
    """Export files on disk, as in development, in a temporary folder."""
    root = tmp_path / "exports"
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": root},
        },
    }
    return root


@pytest.fixture
def orders(shops, restaurants):
    ours, theirs = restaurants
    place(ours, shops["ours"], name="Ada Ours", email="ada@ours.example")
    place(theirs, shops["theirs"], name="Eve Theirs", email="eve@theirs.example")


def signed_in(member):
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token_for(member)
    return client


def records(restaurant):
    with tenant_context(restaurant):
        return list(Export.objects.order_by("pk"))


def export_events(restaurant):
    with tenant_context(restaurant):
        return list(AuditEvent.objects.filter(action="export.created"))


def stored_files(root):
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def prepare(client, run, **data):
    """Press "Prepare in background"; with ``run`` the job runs as the request commits."""
    with run(execute=True):
        return client.post(PAGE, {"type": "customers", **data})


def ready_export(roster, run, export_type="customers"):
    owner = roster[("ours", "owner")]
    response = prepare(signed_in(owner), run, type=export_type)
    assert response.status_code == 303, response.content
    (export,) = records(owner.restaurant)
    assert export.status == Export.Status.DONE
    return export


def rows_of(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"), newline="")))


def test_the_page_shows_the_types_the_filters_and_our_own_scripts_only(roster):
    response = signed_in(roster[("ours", "admin")]).get(PAGE)

    assert response.status_code == 200
    html = response.content.decode()
    for export_type in registry.export_types():
        assert export_type.label in html
    assert 'name="date_from"' in html and 'name="date_to"' in html and 'name="status"' in html
    assert "Everything (zip of every CSV)" in html
    assert 'data-testid="prepare"' in html and 'data-testid="download-now"' in html
    assert "No exports yet." in html
    # The progress script is our own file; no inline script on the page.
    assert re.findall(r"<script(?![^>]*\ssrc=)", html) == []
    assert "/static/dashboard/exports.js" in html
    assert "script-src" in response["Content-Security-Policy"]


@pytest.mark.parametrize(("role", "shown"), [("owner", True), ("admin", True), ("manager", False)])
def test_the_navigation_offers_exports_to_those_who_may_export(roster, role, shown):
    html = signed_in(roster[("ours", role)]).get("/dashboard/").content.decode()
    assert (f'href="{PAGE}"' in html) is shown


def test_prepare_in_background_then_download_the_file(
    orders, roster, restaurants, disk, django_capture_on_commit_callbacks
):
    ours, _ = restaurants
    owner = roster[("ours", "owner")]
    client = signed_in(owner)

    # Queued: the list says so and asks the script to keep polling.
    with django_capture_on_commit_callbacks(execute=False) as pending:
        response = client.post(PAGE, {"type": "customers"})
    assert response.status_code == 303
    assert response["Location"] == PAGE
    (export,) = records(ours)
    assert export.status == Export.Status.QUEUED
    page = client.get(PAGE).content.decode()
    assert "Preparing the customers export." in page
    assert "data-polling" in page and "Queued" in page
    assert "data-polling" in client.get(reverse("dashboard:exports-progress")).content.decode()

    # The job runs once the request commits.
    for callback in pending:
        callback()
    fragment = client.get(reverse("dashboard:exports-progress")).content.decode()
    assert "data-polling" not in fragment
    assert "Ready" in fragment and 'data-testid="export-download"' in fragment
    (export,) = records(ours)
    assert export.status == Export.Status.DONE
    (stored,) = stored_files(disk)
    assert stored == export.file_key
    assert stored.startswith(f"restaurants/{ours.pk}/exports/")
    (message,) = mail.outbox
    assert message.to == [owner.email]
    assert f"http://testserver{PAGE}" in message.body

    # The button: a redirect to a link of this app, signed and good for a few minutes.
    link = client.get(reverse("dashboard:export-link", args=[export.pk]))
    assert link.status_code == 302
    assert link["Location"].startswith(f"/dashboard/exports/{export.pk}/file?token=")
    download = client.get(link["Location"])
    assert download.status_code == 200
    assert download["Content-Disposition"] == f'attachment; filename="{export.file_name}"'
    content = b"".join(download.streaming_content)
    assert [row["email"] for row in rows_of(content)] == ["ada@ours.example"]
    assert b"theirs" not in content
    assert len(export_events(ours)) == 1


def test_prepare_with_a_filter_the_type_lacks_is_refused_on_the_page(
    roster, restaurants, django_capture_on_commit_callbacks
):
    ours, _ = restaurants
    response = prepare(
        signed_in(roster[("ours", "owner")]), django_capture_on_commit_callbacks,
        type="customers", status=["placed"],
    )  # fmt: skip

    assert response.status_code == 400
    assert "The customers export has no status filter." in response.content.decode()
    assert records(ours) == []
    assert export_events(ours) == []


def test_download_now_streams_this_restaurants_csv_and_audits_it(orders, roster, restaurants):
    ours, _ = restaurants
    client = signed_in(roster[("ours", "owner")])

    response = client.post(
        reverse("dashboard:export-download"), {"type": "orders", "status": ["placed"], "bom": "on"}
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="ours-orders-')
    content = b"".join(response.streaming_content)
    assert content.startswith(b"\xef\xbb\xbf")
    assert [row["contact_name"] for row in rows_of(content[3:])] == ["Ada Ours"]
    assert b"Eve" not in content
    (event,) = export_events(ours)
    assert event.changes["filters"]["after"] == {"status": ["placed"]}
    assert records(ours) == [], "nothing is stored for a direct download"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "everything"}, "prepared in the background"),
        ({"type": "menus", "date_from": "2026-01-01"}, "The menus export has no date_from filter."),
        ({"type": "receipts"}, "Select a valid choice."),
    ],
)
def test_download_now_refuses_what_it_cannot_stream(roster, restaurants, data, message):
    ours, _ = restaurants
    response = signed_in(roster[("ours", "owner")]).post(reverse("dashboard:export-download"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert export_events(ours) == []


def test_a_restaurant_pending_deletion_can_still_export(orders, roster, restaurants, disk):
    ours, _ = restaurants
    ours.status = Restaurant.Status.PENDING_DELETION
    ours.save(update_fields=["status"])
    client = signed_in(roster[("ours", "owner")])

    assert client.post(PAGE, {"type": "customers"}).status_code == 303
    download = client.post(reverse("dashboard:export-download"), {"type": "customers"})
    assert download.status_code == 200
    assert b"ada@ours.example" in b"".join(download.streaming_content)


@pytest.mark.parametrize("role", ["manager", "cashier", "kitchen"])
def test_roles_without_the_export_scope_get_403_and_nothing_happens(
    roster, restaurants, role, disk, django_capture_on_commit_callbacks
):
    ours, _ = restaurants
    export = ready_export(roster, django_capture_on_commit_callbacks)
    client = signed_in(roster[("ours", role)])
    owner_link = signed_in(roster[("ours", "owner")]).get(
        reverse("dashboard:export-link", args=[export.pk])
    )["Location"]

    assert prepare(client, django_capture_on_commit_callbacks).status_code == 403
    assert client.post(reverse("dashboard:export-download"), {"type": "orders"}).status_code == 403
    assert client.get(reverse("dashboard:export-link", args=[export.pk])).status_code == 403
    # Even with a valid link in hand: the file view checks who is signed in.
    assert client.get(owner_link).status_code == 403
    assert records(ours) == [export]
    assert len(export_events(ours)) == 1


class TestTheFileLink:
    @pytest.fixture
    def export(self, roster, disk, django_capture_on_commit_callbacks):
        return ready_export(roster, django_capture_on_commit_callbacks)

    def link(self, client, export):
        return client.get(reverse("dashboard:export-link", args=[export.pk]))["Location"]

    def test_an_expired_link_is_refused(self, roster, export, monkeypatch):
        client = signed_in(roster[("ours", "owner")])
        now = int(timezone.now().timestamp())
        with monkeypatch.context() as past:
            # Minted 301 seconds ago: one second past EXPORT_LINK_SECONDS.
            past.setattr(
                signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(now - 301)
            )
            old = self.link(client, export)
        fresh = self.link(client, export)

        assert client.get(old).status_code == 410
        assert client.get(fresh).status_code == 200

    def test_a_forged_or_borrowed_link_is_refused(
        self, roster, export, django_capture_on_commit_callbacks
    ):
        client = signed_in(roster[("ours", "owner")])
        link = self.link(client, export)
        path, _, token = link.partition("?token=")
        assert client.get(path).status_code == 400
        assert client.get(f"{path}?token={token[:-2]}xx").status_code == 403
        # A token minted for another export of ours does not open this one.
        with django_capture_on_commit_callbacks(execute=True):
            client.post(PAGE, {"type": "menus"})
        other = records(export.restaurant)[-1]
        other_token = self.link(client, other).partition("?token=")[2]
        assert client.get(f"{path}?token={other_token}").status_code == 403

    def test_another_restaurant_or_nobody_cannot_use_the_link(self, roster, export):
        link = self.link(signed_in(roster[("ours", "owner")]), export)

        assert signed_in(roster[("theirs", "owner")]).get(link).status_code == 404
        anonymous = Client(raise_request_exception=False).get(link)
        assert anonymous.status_code == 302
        assert "sign-in" in anonymous["Location"]

    def test_an_export_past_its_days_is_not_handed_out(self, roster, export):
        client = signed_in(roster[("ours", "owner")])
        link = self.link(client, export)
        with tenant_context(export.restaurant):
            Export.objects.filter(pk=export.pk).update(expires_at=timezone.now())

        assert client.get(link).status_code == 410
        refused = client.get(reverse("dashboard:export-link", args=[export.pk]))
        assert refused["Location"] == PAGE
        page = client.get(PAGE).content.decode()
        assert "This export has expired" in page and "Expired" in page
        assert 'data-testid="export-download"' not in page


def test_files_on_disk_are_never_under_the_public_media_folder(settings):
    exports = storages.create_storage(settings.STORAGES["exports"])
    assert isinstance(exports, FileSystemStorage)
    root = settings.EXPORTS_ROOT.resolve()
    assert root != settings.MEDIA_ROOT.resolve()
    assert not root.is_relative_to(settings.MEDIA_ROOT.resolve())
    assert Path(exports.location).resolve() == root
