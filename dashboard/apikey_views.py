"""Dashboard pages for the restaurant's API keys (Owner and Admin): the list with a form to
create one and the requests per minute each key may make, one key's page (its name and
address ranges, a roll), and the revoke's confirmation.

A new secret (created or rolled) is shown once, in the answer to the POST that made it: never
in a URL, a redirect, the session or a log. The page is never cached (DashboardView).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control

from apikeys import grants, services, tokens, usage
from apikeys.api import CREATE_RATE_GROUP
from apikeys.models import ApiKey
from dashboard.base import DashboardView
from dashboard.order_views import SeeOther
from dashboard.promotion_views import newest_first
from nordkestrel.errors import DomainError
from nordkestrel.ratelimit import OnOutage, limit
from staff.roles import REVERIFICATION_MINUTES, Scope

KEYS_PAGE = 50
GRANT_PREFIX = "grant_"
LEVEL_LABELS = {
    grants.Level.NONE: "None",
    grants.Level.READ: "Read",
    grants.Level.WRITE: "Read and write",
}


def _ranges_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        label="Allowed IP ranges",
        help_text="One address or CIDR range per line (e.g. 203.0.113.0/24). Empty: anywhere.",
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
    )


def _name_field() -> forms.CharField:
    return forms.CharField(
        max_length=80,
        help_text="What the key is for, e.g. the till or the delivery app.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class KeyForm(forms.Form):
    def show(self, error: DomainError) -> None:
        """A service's refusal next to the field it names (``grants.orders`` is the
        ``grant_orders`` select, ``allowed_ips.2`` the ranges), else above the form."""
        head, _, rest = (error.attr or "").partition(".")
        field = f"{GRANT_PREFIX}{rest}" if head == "grants" and rest else head
        self.add_error(field if field in self.fields else None, error.detail)


class KeyCreateForm(KeyForm):
    name = _name_field()
    expires_in_days = forms.IntegerField(
        min_value=1,
        max_value=services.MAX_EXPIRY_DAYS,
        initial=services.DEFAULT_EXPIRY_DAYS,
        label="Expires in (days)",
        help_text=f"1 to {services.MAX_EXPIRY_DAYS} days.",
    )
    allowed_ips = _ranges_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, resource in grants.RESOURCES.items():
            self.fields[f"{GRANT_PREFIX}{name}"] = forms.ChoiceField(
                label=name.capitalize(),
                choices=[(str(level), LEVEL_LABELS[level]) for level in resource.levels],
                initial=str(resource.minimum),
                # A resource left out of the form is granted its minimum (most: nothing).
                required=False,
                help_text=resource.description,
            )

    def grant_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith(GRANT_PREFIX)]

    def other_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if not name.startswith(GRANT_PREFIX)]

    def arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "grants": {
                name: data[f"{GRANT_PREFIX}{name}"] or str(resource.minimum)
                for name, resource in grants.RESOURCES.items()
            },
            "expires_in_days": data["expires_in_days"],
            "allowed_ips": _lines(data["allowed_ips"]),
        }


class KeyEditForm(KeyForm):
    name = _name_field()
    allowed_ips = _ranges_field()

    def arguments(self) -> dict[str, Any]:
        return {
            "name": self.cleaned_data["name"],
            "allowed_ips": _lines(self.cleaned_data["allowed_ips"]),
        }


class KeyRollForm(KeyForm):
    overlap_hours = forms.IntegerField(
        min_value=0,
        max_value=services.MAX_OVERLAP_HOURS,
        initial=services.DEFAULT_OVERLAP_HOURS,
        label="Old secret keeps working for (hours)",
        help_text=f"0 (it stops now) to {services.MAX_OVERLAP_HOURS} hours (7 days), time to "
        "switch the integration over.",
    )
    expires_in_days = forms.IntegerField(
        min_value=1,
        max_value=services.MAX_EXPIRY_DAYS,
        initial=services.DEFAULT_EXPIRY_DAYS,
        label="New secret expires in (days)",
    )


class KeySettingsForm(KeyForm):
    rate_limit_per_minute = forms.IntegerField(
        min_value=10,
        max_value=10_000,
        label="Requests per minute, per key",
        help_text="10 to 10000. A key past it is answered 429 until the minute is over.",
    )


@dataclass(frozen=True)
class KeyRow:
    """One key as the pages show it."""

    key: ApiKey
    status: str
    status_label: str
    granted: list[tuple[str, str]]
    last_used_at: datetime | None
    last_used_ip: str | None
    previous_until: datetime | None

    @property
    def masked(self) -> str:
        return f"nk_{tokens.environment()}_…{self.key.last4}"

    @property
    def can_roll(self) -> bool:
        return self.status == ApiKey.Status.ACTIVE

    @property
    def can_change(self) -> bool:
        return self.key.revoked_at is None


def key_rows(restaurant_id: int, keys: list[ApiKey]) -> list[KeyRow]:
    """The keys with their status now and their last use, counting the uses not yet moved
    from Redis into the database (as the API's list does)."""
    now = timezone.now()
    pending = usage.pending_uses(restaurant_id, [key.pk for key in keys]) if keys else {}
    rows = []
    for key in keys:
        at, ip = key.last_used_at, key.last_used_ip
        use = pending.get(key.pk)
        if use is not None and (at is None or use.at > at):
            at, ip = use.at, use.ip
        status = key.status_at(now)
        rows.append(
            KeyRow(
                key=key,
                status=status,
                status_label=ApiKey.Status(status).label,
                granted=[
                    (name, LEVEL_LABELS[grants.Level(level)].lower())
                    for name, level in grants.normalise(key.grants).items()
                    if level != grants.Level.NONE
                ],
                last_used_at=at,
                last_used_ip=ip,
                previous_until=(
                    key.previous_expires_at
                    if key.previous_expires_at is not None
                    and key.previous_expires_at > now
                    and key.revoked_at is None
                    else None
                ),
            )
        )
    return rows


class _KeysPage(DashboardView):
    abstract = True

    def common(self) -> dict[str, Any]:
        restaurant = self.actor.restaurant
        return {
            "can_manage": self.actor.has(Scope.API_KEYS_MANAGE),
            "asks_second_factor": restaurant.require_mfa_for_sensitive_actions,
            "reverification_minutes": REVERIFICATION_MINUTES,
            "guide_url": settings.INTEGRATORS_GUIDE_URL,
            "zone": restaurant.zone,
        }

    def key(self, pk: int) -> ApiKey:
        key = ApiKey.objects.select_related("created_by").filter(pk=pk).first()
        if key is None:
            raise Http404
        return key

    def secret_page(
        self, request: HttpRequest, issued: services.IssuedKey, rolled: bool
    ) -> HttpResponse:
        """The secret, in this answer only (status 200; never cached, as every page here)."""
        row = key_rows(self.actor.restaurant.pk, [issued.key])[0]
        response = self.page(
            request,
            template="dashboard/api_key_secret.html",
            row=row,
            secret=issued.secret,
            rolled=rolled,
            **self.common(),
        )
        patch_cache_control(response, no_store=True)
        return response


class _ListPage(_KeysPage):
    abstract = True
    template_name = "dashboard/api_keys.html"

    def list_page(
        self,
        request: HttpRequest,
        create: KeyCreateForm | None = None,
        limits: KeySettingsForm | None = None,
        status: int = 200,
    ) -> HttpResponse:
        keys, older = newest_first(ApiKey.objects.select_related("created_by"), request, KEYS_PAGE)
        current = services.key_settings().rate_limit_per_minute
        return self.page(
            request,
            status=status,
            rows=key_rows(self.actor.restaurant.pk, keys),
            older=older,
            create=create or KeyCreateForm(),
            limits=limits or KeySettingsForm(initial={"rate_limit_per_minute": current}),
            rate_limit=current,
            **self.common(),
        )


class ApiKeysView(_ListPage):
    scopes = {"get": Scope.API_KEYS_READ, "post": Scope.API_KEYS_MANAGE}

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.list_page(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = KeyCreateForm(request.POST)
        if not form.is_valid():
            return self.list_page(request, create=form, status=400)
        # The API's limit on new keys, counted together: a stolen session mints few keys.
        limit(
            request,
            group=CREATE_RATE_GROUP,
            rate=settings.API_KEY_CREATE_RATE,
            key=lambda _group, _request: str(self.actor.restaurant.pk),
            on_outage=OnOutage.ALLOW,
        )
        try:
            issued = services.key_create(actor=self.actor, **form.arguments())
        except DomainError as error:
            form.show(error)
            return self.list_page(request, create=form, status=error.status)
        return self.secret_page(request, issued, rolled=False)


class ApiKeySettingsView(_ListPage):
    """The requests per minute each key may make; the list page shows the form."""

    scopes = {"post": Scope.API_KEYS_MANAGE}

    def post(self, request: HttpRequest) -> HttpResponse:
        form = KeySettingsForm(request.POST)
        if not form.is_valid():
            return self.list_page(request, limits=form, status=400)
        try:
            current = services.key_settings_update(
                actor=self.actor, rate_limit_per_minute=form.cleaned_data["rate_limit_per_minute"]
            )
        except DomainError as error:
            form.show(error)
            return self.list_page(request, limits=form, status=error.status)
        messages.success(
            request, f"Each key may now make {current.rate_limit_per_minute} requests a minute."
        )
        return SeeOther(reverse("dashboard:api-keys"))


class _KeyPage(_KeysPage):
    abstract = True
    template_name = "dashboard/api_key.html"

    def key_page(
        self,
        request: HttpRequest,
        key: ApiKey,
        edit: KeyEditForm | None = None,
        roll: KeyRollForm | None = None,
        status: int = 200,
    ) -> HttpResponse:
        initial = {"name": key.name, "allowed_ips": "\n".join(key.allowed_ips)}
        return self.page(
            request,
            status=status,
            row=key_rows(self.actor.restaurant.pk, [key])[0],
            edit=edit or KeyEditForm(initial=initial),
            roll=roll or KeyRollForm(),
            actor_member_id=self.actor.member.pk,
            **self.common(),
        )


class ApiKeyView(_KeyPage):
    """One key: its facts, its name and address ranges to edit, and a roll."""

    scopes = {"get": Scope.API_KEYS_READ, "post": Scope.API_KEYS_MANAGE}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self.key_page(request, self.key(pk))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        key = self.key(pk)
        form = KeyEditForm(request.POST)
        if not form.is_valid():
            return self.key_page(request, key, edit=form, status=400)
        try:
            key = services.key_update(actor=self.actor, key=key, **form.arguments())
        except DomainError as error:
            form.show(error)
            return self.key_page(request, self.key(pk), edit=form, status=error.status)
        messages.success(request, f"Saved {key.name}.")
        return SeeOther(reverse("dashboard:api-key", args=[key.pk]))


class ApiKeyRollView(_KeyPage):
    """A new secret for the key, shown once in this answer; the old one works for the overlap."""

    scopes = {"post": Scope.API_KEYS_MANAGE}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        key = self.key(pk)
        form = KeyRollForm(request.POST)
        if not form.is_valid():
            return self.key_page(request, key, roll=form, status=400)
        try:
            issued = services.key_roll(actor=self.actor, key=key, **form.cleaned_data)
        except DomainError as error:
            form.show(error)
            return self.key_page(request, self.key(pk), roll=form, status=error.status)
        return self.secret_page(request, issued, rolled=True)


class ApiKeyRevokeView(_KeysPage):
    """The confirmation (GET) and the revoke itself (POST)."""

    template_name = "dashboard/api_key_revoke.html"
    scopes = {"get": Scope.API_KEYS_MANAGE, "post": Scope.API_KEYS_MANAGE}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        key = self.key(pk)
        if key.revoked_at is not None:
            return SeeOther(reverse("dashboard:api-key", args=[key.pk]))
        return self.page(request, row=key_rows(self.actor.restaurant.pk, [key])[0], **self.common())

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        key = self.key(pk)
        try:
            key = services.key_revoke(actor=self.actor, key=key)
        except DomainError as error:
            messages.error(request, error.detail)
            return SeeOther(reverse("dashboard:api-key", args=[key.pk]))
        messages.success(request, f"Revoked {key.label}: it no longer works.")
        return SeeOther(reverse("dashboard:api-keys"))
