"""Dashboard pages for the restaurant's webhook endpoints (Owner and Admin): the list with a
form to add one, one endpoint's page (its settings, enabling, a test message, rotating its
secret, recovering failed deliveries, and its delivery log with each attempt), and the
delete's confirmation.

A signing secret (new or rotated) is shown once, in the answer to the POST that made it:
never in a URL, a redirect, the session or a log, and never stored by a cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control

from dashboard.base import DashboardView
from dashboard.order_views import SeeOther
from dashboard.promotion_views import newest_first
from dashboard.webhook_forms import (
    EndpointCreateForm,
    EndpointEditForm,
    LogFilterForm,
    RecoverForm,
    StateForm,
)
from nordkestrel.errors import DomainError
from staff.roles import Scope
from webhooks import health, limits, services
from webhooks import messages as webhook_messages
from webhooks.models import Attempt, Delivery, Endpoint

DELIVERIES_PAGE = 25
# Attempts shown under one delivery (its count says how many there were).
ATTEMPTS_SHOWN = 20
# The stored answer is its first 2 KB; the page never shows more.
BODY_SHOWN = 2048
ROTATION_HOURS = int(webhook_messages.ROTATION_OVERLAP.total_seconds() // 3600)
DISABLED_LABELS: dict[str, str] = {
    Endpoint.Disabled.MANUALLY: "Disabled by staff or an integrator",
    Endpoint.Disabled.GONE: "Disabled: the endpoint answered 410 Gone",
    Endpoint.Disabled.FAILING: f"Disabled: failing for {health.FAILING_DAYS} days",
}


@dataclass(frozen=True)
class EndpointRow:
    """One endpoint as the pages show it."""

    endpoint: Endpoint

    @property
    def status(self) -> str:
        if not self.endpoint.enabled:
            return "disabled"
        return "failing" if self.endpoint.failing_since else "enabled"

    @property
    def status_label(self) -> str:
        if not self.endpoint.enabled:
            return DISABLED_LABELS.get(self.endpoint.disabled_reason, "Disabled")
        return "Failing" if self.endpoint.failing_since else "Enabled"

    @property
    def previous_until(self) -> datetime | None:
        until = self.endpoint.previous_secret_expires_at
        return until if until is not None and until > timezone.now() else None


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery of the log with its latest attempts, newest first."""

    delivery: Delivery
    attempts: list[Attempt]

    @property
    def more_attempts(self) -> bool:
        return self.delivery.attempts > len(self.attempts)


def _with_attempts(deliveries: list[Delivery]) -> list[DeliveryRow]:
    if not deliveries:
        return []
    newest = Window(
        RowNumber(),
        partition_by=[F("delivery_id")],
        order_by=[F("attempted_at").desc(), F("id").desc()],
    )
    attempts = (
        Attempt.objects.filter(delivery__in=[delivery.pk for delivery in deliveries])
        .annotate(rank=newest)
        .filter(rank__lte=ATTEMPTS_SHOWN)
        .order_by("delivery_id", "-attempted_at", "-id")
    )
    by_delivery: dict[int, list[Attempt]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.delivery_id, []).append(attempt)
    return [DeliveryRow(delivery, by_delivery.get(delivery.pk, [])) for delivery in deliveries]


def _current(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
    }


class _WebhooksPage(DashboardView):
    abstract = True

    def common(self) -> dict[str, Any]:
        return {
            "can_manage": self.actor.has(Scope.WEBHOOKS_MANAGE),
            "zone": self.actor.restaurant.zone,
            "max_endpoints": services.MAX_ENDPOINTS,
            "failing_days": health.FAILING_DAYS,
            "rotation_hours": ROTATION_HOURS,
        }

    def endpoint(self, pk: int) -> Endpoint:
        endpoint = Endpoint.objects.filter(pk=pk).first()
        if endpoint is None:
            raise Http404
        return endpoint

    def create_form(self, data: Any = None) -> EndpointCreateForm:
        return EndpointCreateForm(data, actor=self.actor, initial={"enabled": True})

    def edit_form(self, endpoint: Endpoint, data: Any = None) -> EndpointEditForm:
        return EndpointEditForm(
            data,
            actor=self.actor,
            chosen=endpoint.event_types,
            prefix_id="edit",
            initial=_current(endpoint),
        )

    def secret_page(
        self, request: HttpRequest, issued: services.IssuedEndpoint, rotated: bool
    ) -> HttpResponse:
        """The secret, in this answer only (status 200; never cached, as every page here)."""
        response = self.page(
            request,
            template="dashboard/webhook_secret.html",
            row=EndpointRow(issued.endpoint),
            secret=issued.secret,
            rotated=rotated,
            **self.common(),
        )
        patch_cache_control(response, no_store=True)
        return response


class WebhooksView(_WebhooksPage):
    """The endpoints, and the form to add one (at most MAX_ENDPOINTS)."""

    template_name = "dashboard/webhooks.html"
    scopes = {"get": Scope.WEBHOOKS_READ, "post": Scope.WEBHOOKS_MANAGE}

    def list_page(
        self, request: HttpRequest, create: EndpointCreateForm | None = None, status: int = 200
    ) -> HttpResponse:
        # The service keeps a restaurant to MAX_ENDPOINTS: the list is small by construction.
        endpoints = list(Endpoint.objects.order_by("-id"))
        return self.page(
            request,
            status=status,
            rows=[EndpointRow(endpoint) for endpoint in endpoints],
            at_limit=len(endpoints) >= services.MAX_ENDPOINTS,
            create=create or self.create_form(),
            **self.common(),
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.list_page(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = self.create_form(request.POST)
        if not form.is_valid():
            return self.list_page(request, create=form, status=400)
        # The API's limit on new endpoints, counted together with it, per restaurant.
        limits.count_create(request, self.actor.restaurant.pk)
        try:
            issued = services.endpoint_create(actor=self.actor, **form.arguments())
        except DomainError as error:
            form.show(error)
            return self.list_page(request, create=form, status=error.status)
        return self.secret_page(request, issued, rotated=False)


class _EndpointPage(_WebhooksPage):
    abstract = True
    template_name = "dashboard/webhook.html"

    def deliveries(
        self, request: HttpRequest, endpoint: Endpoint
    ) -> tuple[LogFilterForm, list[DeliveryRow], str | None]:
        """One page of the delivery log, newest first, filtered by status; each delivery
        with its latest attempts. Two queries of bounded size: a page of deliveries, then
        at most ATTEMPTS_SHOWN attempts of each."""
        log_filter = LogFilterForm(request.GET)
        queryset = Delivery.objects.filter(endpoint=endpoint)
        wanted = log_filter.cleaned_data["status"] if log_filter.is_valid() else ""
        if wanted:
            queryset = queryset.filter(status=wanted)
        deliveries, older = newest_first(queryset, request, DELIVERIES_PAGE)
        if older and wanted:
            older = f"{older}&status={wanted}"
        return log_filter, _with_attempts(deliveries), older

    def endpoint_page(
        self,
        request: HttpRequest,
        endpoint: Endpoint,
        edit: EndpointEditForm | None = None,
        recover: RecoverForm | None = None,
        status: int = 200,
    ) -> HttpResponse:
        log_filter, deliveries, older = self.deliveries(request, endpoint)
        if status == 200 and log_filter.errors:
            status = 400
        return self.page(
            request,
            status=status,
            row=EndpointRow(endpoint),
            edit=edit or self.edit_form(endpoint),
            recover=recover or RecoverForm(zone=self.actor.restaurant.zone),
            log_filter=log_filter,
            deliveries=deliveries,
            older=older,
            body_shown=BODY_SHOWN,
            **self.common(),
        )

    def back(self, endpoint: Endpoint) -> SeeOther:
        return SeeOther(reverse("dashboard:webhook", args=[endpoint.pk]))


class WebhookView(_EndpointPage):
    """One endpoint: its facts, its settings to edit, its actions and its delivery log."""

    scopes = {"get": Scope.WEBHOOKS_READ, "post": Scope.WEBHOOKS_MANAGE}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self.endpoint_page(request, self.endpoint(pk))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        endpoint = self.endpoint(pk)
        form = self.edit_form(endpoint, request.POST)
        if not form.is_valid():
            return self.endpoint_page(request, endpoint, edit=form, status=400)
        changes = form.changes(_current(endpoint))
        if changes:
            try:
                endpoint = services.endpoint_update(actor=self.actor, endpoint=endpoint, **changes)
            except DomainError as error:
                form.show(error)
                return self.endpoint_page(
                    request, self.endpoint(pk), edit=form, status=error.status
                )
        messages.success(request, "Saved the endpoint." if changes else "Nothing changed.")
        return self.back(endpoint)


class WebhookStateView(_EndpointPage):
    """Enable or disable the endpoint."""

    scopes = {"post": Scope.WEBHOOKS_MANAGE}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        endpoint = self.endpoint(pk)
        form = StateForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose to enable or to disable the endpoint.")
            return self.back(endpoint)
        enable = form.cleaned_data["enabled"]
        try:
            endpoint = services.endpoint_update(actor=self.actor, endpoint=endpoint, enabled=enable)
        except DomainError as error:
            messages.error(request, error.detail)
            return self.back(endpoint)
        messages.success(
            request,
            "Enabled: new events are sent to it again. Deliveries that failed meanwhile can "
            "be recovered below."
            if enable
            else "Disabled: nothing is sent to it until it is enabled again, and deliveries "
            "still owed to it are marked failed (recover them once it is enabled).",
        )
        return self.back(endpoint)


class WebhookTestView(_EndpointPage):
    """Send a ``webhook.test`` message now; it appears in the delivery log."""

    scopes = {"post": Scope.WEBHOOKS_MANAGE}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        endpoint = self.endpoint(pk)
        limits.count_test(request, self.actor.restaurant.pk)
        try:
            delivery = services.send_test(actor=self.actor, endpoint=endpoint)
        except DomainError as error:
            messages.error(request, error.detail)
            return self.back(endpoint)
        messages.success(
            request,
            f"A test message ({delivery.message_id}) is on its way: reload the page in a "
            "moment to see how it went.",
        )
        return self.back(endpoint)


class WebhookRotateView(_EndpointPage):
    """A new signing secret, shown once in this answer; the previous one also signs for a
    while."""

    scopes = {"post": Scope.WEBHOOKS_MANAGE}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        endpoint = self.endpoint(pk)
        try:
            issued = services.endpoint_rotate(actor=self.actor, endpoint=endpoint)
        except DomainError as error:
            messages.error(request, error.detail)
            return self.back(endpoint)
        return self.secret_page(request, issued, rotated=True)


class WebhookRecoverView(_EndpointPage):
    """Send again every delivery that failed since a time (in the restaurant's zone)."""

    scopes = {"post": Scope.WEBHOOKS_MANAGE}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        endpoint = self.endpoint(pk)
        form = RecoverForm(request.POST, zone=self.actor.restaurant.zone)
        if not form.is_valid():
            return self.endpoint_page(request, endpoint, recover=form, status=400)
        try:
            count = services.recover(
                actor=self.actor, endpoint=endpoint, since=form.cleaned_data["since"]
            )
        except DomainError as error:
            form.show(error)
            return self.endpoint_page(request, self.endpoint(pk), recover=form, status=error.status)
        if count:
            noun = "delivery is" if count == 1 else "deliveries are"
            messages.success(request, f"{count} failed {noun} being sent again.")
        else:
            messages.info(request, "No delivery failed since then: nothing to send again.")
        return self.back(endpoint)


class DeliveryResendView(_EndpointPage):
    """Send one delivery again now, once, with the same ``webhook-id``."""

    scopes = {"post": Scope.WEBHOOKS_MANAGE}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        delivery = Delivery.objects.select_related("endpoint").filter(pk=pk).first()
        if delivery is None:
            raise Http404
        try:
            services.resend(actor=self.actor, delivery=delivery)
        except DomainError as error:
            messages.error(request, error.detail)
            return self.back(delivery.endpoint)
        messages.success(request, f"Sending {delivery.message_id} again.")
        return self.back(delivery.endpoint)


class WebhookDeleteView(_WebhooksPage):
    """The confirmation (GET) and the delete itself (POST)."""

    template_name = "dashboard/webhook_delete.html"
    scopes = {"get": Scope.WEBHOOKS_MANAGE, "post": Scope.WEBHOOKS_MANAGE}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self.page(request, row=EndpointRow(self.endpoint(pk)), **self.common())

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        endpoint = self.endpoint(pk)
        try:
            services.endpoint_delete(actor=self.actor, endpoint=endpoint)
        except DomainError as error:
            messages.error(request, error.detail)
            return SeeOther(reverse("dashboard:webhook", args=[endpoint.pk]))
        messages.success(request, f"Deleted the endpoint {endpoint.url}.")
        return SeeOther(reverse("dashboard:webhooks"))
