"""Dashboard pages for CSV exports (Owners and Admins).

One page lists the export types with their filters: "Download now" streams the CSV at once
(the same COPY stream as the API's), "Prepare in background" starts a job whose progress the
page follows (a small script polls a fragment of the list). Past exports can be downloaded
again until they expire: the button asks for a fresh link that works for a few minutes, a
presigned bucket URL, or in development this app's own file view, which checks the signed-in
member as well as the link's signed token.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse

from dashboard.base import DashboardView
from dashboard.promotion_views import newest_first
from exports import copy, registry, services, storage
from exports.api import RATE_GROUP as STREAM_RATE_GROUP
from exports.models import EVERYTHING, Export
from nordkestrel.errors import DomainError, error_response
from nordkestrel.ratelimit import OnOutage, limit
from staff.roles import Scope

EXPORTS_PAGE = 20
FILE_ROUTE = "dashboard:export-file"


class SeeOther(HttpResponseRedirect):
    """After a POST, the browser fetches the page again with GET (no resubmission)."""

    status_code = 303


def _type_choices() -> list[tuple[str, str]]:
    choices = [(export.name, export.label) for export in registry.export_types()]
    return [*choices, (EVERYTHING, services.EVERYTHING_LABEL)]


def _status_choices() -> list[tuple[str, str]]:
    statuses: list[str] = []
    for export in registry.export_types():
        statuses += [status for status in export.statuses if status not in statuses]
    return [(status, status.replace("_", " ").capitalize()) for status in statuses]


class ExportForm(forms.Form):
    type = forms.ChoiceField(label="Export")
    date_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    status = forms.MultipleChoiceField(
        label="Status",
        required=False,
        help_text="Orders and order lines only; none selected means every status.",
        widget=forms.SelectMultiple(attrs={"size": 4}),
    )
    bom = forms.BooleanField(
        label="For Excel", required=False, help_text="Adds a byte order mark so Excel reads UTF-8."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        type_field: Any = self.fields["type"]
        type_field.choices = _type_choices()
        status_field: Any = self.fields["status"]
        status_field.choices = _status_choices()

    def filters(self) -> dict[str, Any]:
        """The filters in the API's shape, for the services to check against the type."""
        data = self.cleaned_data
        filters: dict[str, Any] = {}
        for name in ("date_from", "date_to"):
            if data.get(name):
                filters[name] = data[name].isoformat()
        if data.get("status"):
            filters["status"] = list(data["status"])
        return filters

    def show(self, error: DomainError) -> None:
        field = {"type": "type", "export_type": "type"}.get(error.attr or "", error.attr)
        self.add_error(field if field in self.fields else None, error.detail)


class ExportRow:
    """One past export as the list shows it."""

    def __init__(self, export: Export) -> None:
        self.export = export
        self.label = services.type_label(export.export_type)
        self.expired = services.is_expired(export)
        self.active = export.status in (Export.Status.QUEUED, Export.Status.RUNNING)
        self.filters = ", ".join(
            f"{name.replace('_', ' ')}: {', '.join(value) if isinstance(value, list) else value}"
            for name, value in (export.filters or {}).items()
        )

    @property
    def downloadable(self) -> bool:
        return self.export.status == Export.Status.DONE and not self.expired


class _ExportsPage(DashboardView):
    abstract = True
    template_name = "dashboard/exports.html"

    def listing(self, request: HttpRequest) -> dict[str, Any]:
        """Past exports, newest first, and whether any is still being prepared."""
        exports, older = newest_first(Export.objects.all(), request, EXPORTS_PAGE)
        rows = [ExportRow(export) for export in exports]
        before = request.GET.get("before", "")
        progress_url = reverse("dashboard:exports-progress")
        if before.isascii() and before.isdigit() and len(before) <= 18:
            progress_url += f"?before={before}"
        return {
            "rows": rows,
            "older": older,
            "polling": any(row.active for row in rows),
            "progress_url": progress_url,
        }

    def show(self, request: HttpRequest, form: ExportForm, status: int = 200) -> HttpResponse:
        return self.page(
            request,
            status=status,
            form=form,
            types=registry.export_types(),
            retention_days=settings.EXPORT_RETENTION_DAYS,
            **self.listing(request),
        )


class ExportsView(_ExportsPage):
    scopes = {"get": Scope.EXPORTS_CREATE, "post": Scope.EXPORTS_CREATE}
    # A restaurant pending deletion still takes its data with it.
    allowed_while_closing = True

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.show(request, ExportForm(initial={"type": "orders"}))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ExportForm(request.POST)
        if not form.is_valid():
            return self.show(request, form, status=400)
        try:
            export = services.export_request(
                actor=self.actor,
                export_type=form.cleaned_data["type"],
                filters=form.filters(),
                bom=form.cleaned_data["bom"],
                dashboard_url=request.build_absolute_uri(reverse("dashboard:exports")),
            )
        except DomainError as error:
            form.show(error)
            return self.show(request, form, status=400)
        messages.success(
            request,
            f"Preparing the {services.type_noun(export.export_type)} export. "
            "This page shows its progress, and we email you when it is ready.",
        )
        return SeeOther(reverse("dashboard:exports"))


class ExportsProgressView(_ExportsPage):
    """The list of past exports alone, for the page's script to swap in while jobs run."""

    scopes = {"get": Scope.EXPORTS_CREATE}

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "dashboard/_export_rows.html", self.listing(request))


def _stream_rate_key(restaurant_id: int, member_id: int) -> Any:
    # The same budget as the API's streamed exports (exports.api.rate_key): per member.
    return lambda _group, _request: f"{restaurant_id}:{member_id}"


class ExportDownloadView(_ExportsPage):
    """The "Download now" button: one type's CSV streamed straight to the browser, audited.
    A POST (the page's form), so the CSRF token travels in the body, never in a URL."""

    scopes = {"post": Scope.EXPORTS_CREATE}
    allowed_while_closing = True

    def post(self, request: HttpRequest) -> HttpResponseBase:
        form = ExportForm(request.POST)
        if not form.is_valid():
            return self.show(request, form, status=400)
        if form.cleaned_data["type"] == EVERYTHING:
            form.add_error("type", "The zip of every export is prepared in the background.")
            return self.show(request, form, status=400)
        try:
            name, filters = services.parse_export(form.cleaned_data["type"], form.filters())
        except DomainError as error:
            form.show(error)
            return self.show(request, form, status=400)
        actor = self.actor
        limit(
            request,
            group=STREAM_RATE_GROUP,
            key=_stream_rate_key(actor.restaurant.pk, actor.member.pk),
            rate=settings.EXPORT_RATE,
            on_outage=OnOutage.ALLOW,
        )
        export_type = registry.get(name)
        bom = form.cleaned_data["bom"]
        copy.record_export(actor=actor, export_type=export_type, filters=filters, bom=bom)
        # The body streams after this view's transaction has committed the audit event, from
        # a transaction of its own.
        response = StreamingHttpResponse(
            copy.stream_csv(
                restaurant=actor.restaurant, export_type=export_type, filters=filters, bom=bom
            ),
            content_type=copy.CONTENT_TYPE,
        )
        file_name = copy.file_name(actor.restaurant, export_type)
        response["Content-Disposition"] = f'attachment; filename="{file_name}"'
        return response


def _export(pk: int) -> Export:
    export = Export.objects.filter(pk=pk).first()
    if export is None:
        raise Http404
    return export


class ExportLinkView(DashboardView):
    """The download button: a redirect to a fresh link that works for a few minutes."""

    scopes = {"get": Scope.EXPORTS_CREATE}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        export = _export(pk)
        try:
            url = services.export_download_url(actor=self.actor, export=export, route=FILE_ROUTE)
        except DomainError as error:
            messages.error(request, error.detail)
            return HttpResponseRedirect(reverse("dashboard:exports"))
        return HttpResponseRedirect(url)


class ExportFileView(DashboardView):
    """A stored file, when exports live on this machine's disk (development): only for a
    signed-in member who may export, with an unexpired token minted for this file."""

    scopes = {"get": Scope.EXPORTS_CREATE}

    def get(self, request: HttpRequest, pk: int) -> HttpResponseBase:
        export = _export(pk)
        if not storage.serves_itself() or not export.file_key:
            raise Http404
        token = request.GET.get("token", "")
        if not token:
            return error_response(request, 400, "token_required", "Use the download button.")
        try:
            storage.check_download_token(
                token, restaurant_id=export.restaurant_id, export_id=export.pk, key=export.file_key
            )
        except storage.LinkExpired:
            return error_response(
                request, 410, "link_expired", "This link has expired: use the download button."
            )
        except storage.LinkInvalid:
            return error_response(request, 403, "invalid_link", "This link is not valid.")
        if services.is_expired(export) or export.status != Export.Status.DONE:
            return error_response(request, 410, "export_expired", "This export has expired.")
        return FileResponse(
            storage.open_file(export.file_key),
            as_attachment=True,
            filename=export.file_name,
            content_type=services.content_type(export),
        )
