"""Staff API routes for CSV exports (included under /api/v1/)."""

from django.urls import path

from exports import api

urlpatterns = [
    path("exports", api.ExportListView.as_view(), name="api-exports"),
    path("exports/<slug:export_type>.csv", api.ExportCSVView.as_view(), name="api-export-csv"),
]
