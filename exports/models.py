"""Background exports: one record per requested file, its progress and where the file lies."""

from __future__ import annotations

from django.db import models

from tenants.models import TenantModel

# The export type that bundles every registered type's CSV into one zip.
EVERYTHING = "everything"


class Export(TenantModel):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Preparing"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    export_type = models.CharField(max_length=40)
    filters = models.JSONField(default=dict, blank=True)
    bom = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    rows_written = models.BigIntegerField(default=0)
    # 0-100; a bundle advances one part per type, a single CSV jumps to 100 when done.
    percent = models.PositiveSmallIntegerField(default=0)
    file_key = models.CharField(max_length=255, blank=True)
    file_name = models.CharField(max_length=120, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    requested_by = models.ForeignKey(
        "staff.StaffMember", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Copied at request time: the record still says who asked after the member leaves.
    requested_by_label = models.CharField(max_length=254, blank=True)
    requested_by_email = models.EmailField(max_length=254, blank=True)
    # The exports page the "ready" email links to, as the requester reached it.
    dashboard_url = models.URLField(max_length=300, blank=True)
    # Which run owns the record: a second run of the same job (a retry, a duplicate enqueue)
    # takes over only a run that stopped reporting (heartbeat_at), and never writes over it.
    run_token = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the file and this record are deleted (EXPORT_RETENTION_DAYS after the request, or
    # after the file was ready).
    expires_at = models.DateTimeField()

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["restaurant", "-created_at"], name="exports_newest_first"),
        ]

    def __str__(self) -> str:
        return f"{self.export_type} export #{self.pk}"

    @property
    def label(self) -> str:
        return f"{self.export_type} export"

    @property
    def finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.FAILED}
