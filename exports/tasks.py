"""The background export: stream the CSV (or the zip of every CSV) into storage.

``run_export`` takes the restaurant id and enters its context itself. Memory stays bounded
whatever the size: the COPY stream (exports.copy) is written chunk by chunk into a temporary
file that spills to disk past ``SPOOL_BYTES``, and the finished file goes to storage in one
upload (a multipart upload for a large file in a bucket). Nothing is stored until the whole
file is written, so a failed export leaves no partial file behind.

Running the same export twice is harmless: a run first claims the record; a second run finds
it claimed (or done) and does nothing, unless the first stopped reporting for
``STALE_AFTER`` (a crashed worker), in which case it starts over and the first can no longer
write.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.headerregistry import Address
from typing import IO, Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import DatabaseError, connection
from django.db.models import Q
from django.tasks import task
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.utils import timezone

from exports import services, storage
from exports.copy import file_name, stream_csv
from exports.models import EVERYTHING, Export
from exports.registry import ExportType
from nordkestrel.mail import IDEMPOTENCY_ATTRIBUTE, describe_error
from staff.models import StaffMember
from tenants.context import tenant_context
from tenants.models import Restaurant

logger = logging.getLogger(__name__)

MAILER = "default"
# Past this, the file being written moves from memory to a temporary file on disk.
SPOOL_BYTES = 1024 * 1024
# How often a running export writes its progress (and shows it is alive).
PROGRESS_SECONDS = 2.0
# A running export that has not reported for this long is taken to have died with its worker.
STALE_AFTER = timedelta(minutes=10)
FAILURE_MESSAGE = "The file could not be prepared. Start the export again."


class Superseded(Exception):
    """Another run took the export over (or it was deleted): this run's work is dropped."""


class Progress:
    """Writes the export's progress from a thread of its own, on its own connection.

    The COPY runs inside one long transaction, whose writes nobody sees until it ends; the
    dashboard polls the record meanwhile, so progress is written and committed elsewhere.
    """

    def __init__(self, restaurant: Restaurant, export_id: int, token: str) -> None:
        self.restaurant = restaurant
        self.export_id = export_id
        self.token = token
        self.rows = 0
        self.percent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"export-{export_id}", daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(PROGRESS_SECONDS):
                self._write()
        finally:
            connection.close()

    def _write(self) -> None:
        # Written even when unchanged: a query that is slow to send its first row is alive.
        state = (self.rows, self.percent)
        try:
            with tenant_context(self.restaurant), connection.cursor() as cursor:
                # Never wait on a lock: a missed update is made good by the next one.
                cursor.execute("SET LOCAL lock_timeout = '1s'")
                Export.objects.filter(pk=self.export_id, run_token=self.token).update(
                    rows_written=state[0], percent=state[1], heartbeat_at=timezone.now()
                )
        except DatabaseError:
            logger.warning("Export progress not written", extra={"export_id": self.export_id})


@dataclass(frozen=True)
class Built:
    file: IO[bytes]
    name: str
    extension: str
    rows: int
    size: int


def _write_csv(
    target: IO[bytes],
    restaurant: Restaurant,
    export_type: ExportType,
    export: Export,
    on_rows: Callable[[int], None],
) -> int:
    rows = 0

    def seen(count: int) -> None:
        nonlocal rows
        rows = count
        on_rows(count)

    chunks = stream_csv(
        restaurant=restaurant,
        export_type=export_type,
        filters=services.filters_for(export, export_type),
        bom=export.bom,
        progress=seen,
    )
    for chunk in chunks:
        target.write(chunk)
    return rows


def _build(restaurant: Restaurant, export: Export, progress: Progress) -> Built:
    types = services.export_types_of(export)
    spool: Any = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (returned)
    try:
        if export.export_type != EVERYTHING:
            (only,) = types

            def single(count: int) -> None:
                progress.rows = count

            rows = _write_csv(spool, restaurant, only, export, single)
            name, extension = file_name(restaurant, only), "csv"
        else:
            rows = 0
            with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for index, export_type in enumerate(types):

                    def bundled(count: int, before: int = rows) -> None:
                        progress.rows = before + count

                    with archive.open(
                        file_name(restaurant, export_type), "w", force_zip64=True
                    ) as entry:
                        rows += _write_csv(entry, restaurant, export_type, export, bundled)
                    progress.percent = (index + 1) * 100 // len(types)
            day = timezone.localtime(timezone.now(), restaurant.zone).date().isoformat()
            name, extension = f"{restaurant.slug}-everything-{day}.zip", "zip"
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return Built(file=spool, name=name, extension=extension, rows=rows, size=size)


def _claim(restaurant: Restaurant, export_id: int) -> str | None:
    """Mark the export running for this run; None when it is not this run's to do."""
    now = timezone.now()
    token = secrets.token_hex(16)
    with tenant_context(restaurant):
        claimed = (
            Export.objects.filter(pk=export_id, expires_at__gt=now)
            .filter(
                Q(status=Export.Status.QUEUED)
                | Q(status=Export.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER)
            )
            .update(
                status=Export.Status.RUNNING,
                run_token=token,
                started_at=now,
                heartbeat_at=now,
                rows_written=0,
                percent=0,
                error="",
            )
        )
    return token if claimed else None


def _finish(restaurant: Restaurant, export_id: int, token: str, key: str, built: Built) -> None:
    now = timezone.now()
    with tenant_context(restaurant):
        finished = Export.objects.filter(pk=export_id, run_token=token).update(
            status=Export.Status.DONE,
            file_key=key,
            file_name=built.name,
            size=built.size,
            rows_written=built.rows,
            percent=100,
            finished_at=now,
            heartbeat_at=now,
            # Kept for the retention period from the moment it can be downloaded.
            expires_at=now + services.retention(),
        )
    if not finished:
        raise Superseded


def _fail(restaurant: Restaurant, export_id: int, token: str) -> None:
    with tenant_context(restaurant):
        Export.objects.filter(pk=export_id, run_token=token).update(
            status=Export.Status.FAILED,
            error=FAILURE_MESSAGE,
            finished_at=timezone.now(),
            file_key="",
            size=None,
        )


def _forget(restaurant: Restaurant, key: str) -> None:
    """Delete a file this run stored but may not keep; a storage error is only logged."""
    if not key:
        return
    try:
        storage.delete(restaurant.pk, key)
    except Exception:
        logger.warning("Could not delete an unused export file %s", key, exc_info=True)


def _notify(restaurant: Restaurant, export_id: int, event: str) -> None:
    """Email the member who asked, if they are still on the staff. Only a link to the
    dashboard: the file needs a signed-in Owner or Admin."""
    with tenant_context(restaurant):
        export = Export.objects.filter(pk=export_id).first()
        member = (
            StaffMember.objects.filter(pk=export.requested_by_id, active=True).first()
            if export is not None and export.requested_by_id
            else None
        )
    if export is None or member is None:
        return
    message = export_email(restaurant=restaurant, export=export, member=member, event=event)
    try:
        message.send(using=MAILER)
    except Exception as error:
        # The file is there whatever happens to the email: the dashboard lists it.
        logger.error(
            "Export email not sent: %s", describe_error(error), extra={"export_id": export_id}
        )


def export_email(
    *, restaurant: Restaurant, export: Export, member: StaffMember, event: str
) -> EmailMessage:
    name = " ".join(restaurant.name.split())
    label = services.type_noun(export.export_type)
    expires = timezone.localtime(export.expires_at, restaurant.zone)
    context = {
        "name": member.name or member.email,
        "restaurant_name": name,
        "label": label,
        "size": filesizeformat(export.size or 0),
        "rows": export.rows_written,
        "expires": f"{expires:%Y-%m-%d %H:%M} ({restaurant.zone.key})",
        "dashboard_url": export.dashboard_url,
    }
    subject = (
        f"{name}: your {label} export is ready"
        if event == "ready"
        else f"{name}: your {label} export failed"
    )
    message = EmailMessage(
        subject=subject,
        body=render_to_string(f"exports/email/{event}.txt", context).strip() + "\n",
        from_email=str(Address(display_name="Nordkestrel", addr_spec=settings.EXPORTS_EMAIL_FROM)),
        to=[member.email],
    )
    # A retried job sends the same key, and Resend delivers the email once.
    setattr(message, IDEMPOTENCY_ATTRIBUTE, f"export-{restaurant.pk}-{export.pk}-{event}")
    return message


@task
def run_export(*, restaurant_id: int, export_id: int) -> str:
    """Build one export's file, store it, mark the record done (or failed), email the member.

    Returns "done", or "skipped" when it is not this run's to do. A failure is recorded on
    the export (and emailed), then raised again for the worker's own record.
    """
    restaurant = Restaurant.objects.filter(pk=restaurant_id).first()
    if restaurant is None:
        return "skipped"
    token = _claim(restaurant, export_id)
    if token is None:
        return "skipped"
    key = ""
    try:
        with tenant_context(restaurant):
            export = Export.objects.get(pk=export_id)
        # Progress keeps reporting through the upload: a long one is not a dead run.
        with Progress(restaurant, export_id, token) as progress:
            built = _build(restaurant, export, progress)
            with built.file:
                key = storage.save(storage.new_key(restaurant.pk, built.extension), built.file)
        _finish(restaurant, export_id, token, key, built)
    except Superseded:
        _forget(restaurant, key)
        return "skipped"
    except Exception:
        logger.exception("Export failed", extra={"export_id": export_id})
        _forget(restaurant, key)
        _fail(restaurant, export_id, token)
        _notify(restaurant, export_id, "failed")
        raise
    _notify(restaurant, export_id, "ready")
    return "done"
