"""Staff API routes for background exports (included under /api/v1/)."""

from django.urls import path

from exports import job_api

urlpatterns = [
    path("exports/jobs", job_api.ExportJobListView.as_view(), name="api-export-jobs"),
    path("exports/jobs/<int:pk>", job_api.ExportJobDetailView.as_view(), name="api-export-job"),
]
