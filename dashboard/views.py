from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from audit import registry as audit_registry
from audit.models import AuditEvent
from audit.selectors import AuditFilters, describe, filter_events
from dashboard.base import DashboardView, safe_next
from nordkestrel.errors import DomainError
from restaurants import services as restaurant_services
from staff import services as staff_services
from staff.credentials import SESSION_COOKIE
from staff.models import StaffMember
from staff.roles import Role, Scope, can_manage
from tenants.models import OpeningException, OpeningHours, Restaurant


class HomeView(DashboardView):
    template_name = "dashboard/home.html"
    scopes = {"get": Scope.RESTAURANT_READ}

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(request)


class SettingsForm(forms.ModelForm):
    class Meta:
        model = Restaurant
        fields = list(restaurant_services.EDITABLE_SETTINGS)


class SettingsView(DashboardView):
    template_name = "dashboard/settings.html"
    scopes = {"get": Scope.RESTAURANT_READ, "post": Scope.RESTAURANT_WRITE}

    def _page(self, request: HttpRequest, form: SettingsForm, status: int = 200) -> HttpResponse:
        return self.page(
            request,
            status=status,
            form=form,
            can_edit=self.actor.has(Scope.RESTAURANT_WRITE),
            can_delete=self.actor.has(Scope.RESTAURANT_DELETE),
            weekly=OpeningHours.objects.all(),
            exceptions=OpeningException.objects.all(),
        )

    def _form(self, data: Any = None) -> SettingsForm:
        form = SettingsForm(data, instance=Restaurant.objects.get(pk=self.actor.restaurant.pk))
        if not self.actor.has(Scope.RESTAURANT_SECURITY):
            # Only an Owner sees (and can change) the security settings.
            for field in restaurant_services.SECURITY_SETTINGS:
                del form.fields[field]
        return form

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._page(request, self._form())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = self._form(request.POST)
        if not form.is_valid():
            return self._page(request, form, status=400)
        try:
            restaurant_services.restaurant_update_settings(
                actor=self.actor, changes=dict(form.cleaned_data)
            )
        except DomainError as error:
            form.add_error(error.attr if error.attr in form.fields else None, error.detail)
            return self._page(request, form, status=error.status)
        messages.success(request, "Settings saved.")
        return HttpResponseRedirect(reverse("dashboard:settings"))


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254)
    name = forms.CharField(max_length=120, required=False)
    # Least privilege unless the inviter chooses otherwise.
    role = forms.ChoiceField(choices=Role.choices, initial=Role.KITCHEN)

    def __init__(self, *args: Any, assignable: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = assignable  # type: ignore[attr-defined]


class StaffActionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("invite", "invite"), ("role", "role"), ("deactivate", "deactivate")]
    )
    member = forms.IntegerField(required=False)
    role = forms.ChoiceField(choices=Role.choices, required=False)


class StaffView(DashboardView):
    template_name = "dashboard/staff.html"
    scopes = {"get": Scope.STAFF_READ, "post": Scope.STAFF_WRITE}

    def _assignable(self) -> list[tuple[str, str]]:
        """The roles this actor may hand out (an Admin never sees Owner)."""
        return [
            (value, label) for value, label in Role.choices if can_manage(self.actor.role, value)
        ]

    def _invite_form(self, data: Any = None) -> InviteForm:
        return InviteForm(data, assignable=self._assignable())

    def _page(self, request: HttpRequest, invite: InviteForm, status: int = 200) -> HttpResponse:
        can_edit = self.actor.has(Scope.STAFF_WRITE)
        return self.page(
            request,
            status=status,
            rows=[
                (member, can_edit and can_manage(self.actor.role, member.role))
                for member in StaffMember.objects.all()
            ],
            invite_form=invite,
            roles=self._assignable(),
            can_edit=can_edit,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._page(request, self._invite_form())

    def post(self, request: HttpRequest) -> HttpResponse:
        action = StaffActionForm(request.POST)
        if not action.is_valid():
            return self._page(request, self._invite_form(), status=400)
        invite = self._invite_form()
        try:
            if action.cleaned_data["action"] == "invite":
                invite = self._invite_form(request.POST)
                if not invite.is_valid():
                    return self._page(request, invite, status=400)
                member = staff_services.staff_invite(actor=self.actor, **invite.cleaned_data)
                messages.success(request, f"Invited {member.email}.")
            else:
                member = self._member(action.cleaned_data["member"])
                if action.cleaned_data["action"] == "role":
                    staff_services.staff_update(
                        actor=self.actor, member=member, role=action.cleaned_data["role"] or None
                    )
                    messages.success(request, f"{member.label} is now {member.get_role_display()}.")
                else:
                    staff_services.staff_deactivate(actor=self.actor, member=member)
                    messages.success(request, f"{member.label} was deactivated.")
        except DomainError as error:
            messages.error(request, error.detail)
            return self._page(request, invite, status=error.status)
        return HttpResponseRedirect(reverse("dashboard:staff"))

    def _member(self, pk: Any) -> StaffMember:
        try:
            return StaffMember.objects.get(pk=pk)
        except (StaffMember.DoesNotExist, ValueError, TypeError):
            raise Http404 from None


@require_safe
def sign_in(request: HttpRequest) -> HttpResponse:
    """Clerk's hosted sign-in, mounted by Clerk's browser script (production)."""
    return render(
        request,
        "dashboard/sign_in.html",
        {
            "clerk_frontend_api": settings.CLERK_FRONTEND_API.rstrip("/"),
            "clerk_publishable_key": settings.CLERK_PUBLISHABLE_KEY,
            "next": safe_next(request, request.GET.get("next", "")),
        },
    )


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    """Forget the session here, and (in production) end it at Clerk too.

    Dropping the cookie alone would let Clerk's script sign a shared till straight back in.
    """
    if settings.DEV_AUTH:
        response: HttpResponse = HttpResponseRedirect(reverse("dev-sign-in"))
    else:
        response = render(
            request,
            "dashboard/signed_out.html",
            {
                "clerk_frontend_api": settings.CLERK_FRONTEND_API.rstrip("/"),
                "clerk_publishable_key": settings.CLERK_PUBLISHABLE_KEY,
            },
        )
    response.delete_cookie(SESSION_COOKIE)
    return response


class SwitchForm(forms.Form):
    restaurant = forms.IntegerField()


class SwitchRestaurantView(DashboardView):
    """Move to another restaurant where the same person is on the roster."""

    template_name = "dashboard/switch.html"
    scopes = {"post": Scope.RESTAURANT_READ}
    # Moving to another restaurant changes nothing here.
    allowed_while_closing = True

    def post(self, request: HttpRequest) -> HttpResponse:
        form = SwitchForm(request.POST)
        target = None
        if form.is_valid():
            target = next(
                (
                    m
                    for m in self.context()["memberships"]
                    if m["restaurant_id"] == form.cleaned_data["restaurant"]
                ),
                None,
            )
        if target is None:
            raise Http404
        organization_id = (
            Restaurant.objects.filter(pk=target["restaurant_id"])
            .values_list("clerk_organization_id", flat=True)
            .first()
        )
        if not organization_id:
            raise Http404
        if not settings.DEV_AUTH:
            # Clerk's browser script makes that organization active and refreshes the cookie.
            return self.page(
                request,
                organization_id=organization_id,
                clerk_frontend_api=settings.CLERK_FRONTEND_API.rstrip("/"),
                clerk_publishable_key=settings.CLERK_PUBLISHABLE_KEY,
            )
        from dashboard.devauth import session_response

        return session_response(
            request,
            clerk_user_id=self.actor.member.clerk_user_id or "",
            organization_id=organization_id,
            email=self.actor.member.email,
            next_url=reverse("dashboard:home"),
        )


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False)
    actor = forms.CharField(required=False, max_length=64)
    target_type = forms.CharField(required=False, max_length=64)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    before = forms.IntegerField(
        required=False, min_value=1, max_value=2**62, widget=forms.HiddenInput
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("since", "until"):
            day = data.get(name)
            if day and not date(2000, 1, 1) <= day <= date(9000, 1, 1):
                self.add_error(name, "Choose a date between 2000 and 9000.")
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "Must not be before the start date.")
        return data

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        families = sorted({name.split(".")[0] + "." for name in audit_registry.names()})
        self.fields["action"].choices = [  # type: ignore[attr-defined]
            ("", "All actions"),
            *[(family, f"{family[:-1].title()} (all)") for family in families],
            *[(name, name) for name in audit_registry.names()],
        ]


AUDIT_PAGE_SIZE = 50


class AuditLogView(DashboardView):
    """The audit log, filtered, newest first, times in the restaurant's time zone."""

    template_name = "dashboard/audit.html"
    scopes = {"get": Scope.AUDIT_READ}

    def get(self, request: HttpRequest) -> HttpResponse:
        form = AuditFilterForm(request.GET or None)
        zone = self.actor.restaurant.zone
        events = AuditEvent.objects.all()
        if form.is_bound and not form.is_valid():
            return self.page(request, status=400, form=form, events=[], zone=zone)
        data = form.cleaned_data if form.is_bound else {}

        def day_start(day: date | None) -> datetime | None:
            return datetime.combine(day, time.min, tzinfo=zone) if day else None

        until = data.get("until")
        events = filter_events(
            events,
            AuditFilters(
                action=data.get("action") or None,
                actor=data.get("actor") or None,
                target_type=data.get("target_type") or None,
                since=day_start(data.get("since")),
                until=day_start(until + timedelta(days=1)) if until else None,
            ),
        )
        if data.get("before"):
            events = events.filter(sequence__lt=data["before"])
        page = list(events.order_by("-sequence")[: AUDIT_PAGE_SIZE + 1])
        older = None
        if len(page) > AUDIT_PAGE_SIZE:
            page = page[:AUDIT_PAGE_SIZE]
            query = request.GET.copy()
            query["before"] = str(page[-1].sequence)
            older = "?" + query.urlencode()
        rows = [(event, describe(event), event.occurred_at.astimezone(zone)) for event in page]
        return self.page(request, form=form, rows=rows, older=older, zone=zone)
