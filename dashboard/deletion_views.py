"""Deleting the restaurant account (Owner): what happens, the typed confirmation, the cancel."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse

from dashboard.base import DashboardView
from nordkestrel.errors import DomainError
from restaurants import deletion
from staff.roles import Scope


class DeletionForm(forms.Form):
    action = forms.ChoiceField(choices=[("request", "request"), ("cancel", "cancel")])
    confirm_name = forms.CharField(max_length=200, required=False, strip=False)


def _exports_url() -> str:
    try:
        return reverse("dashboard:exports")
    except NoReverseMatch:
        return ""


class DeletionView(DashboardView):
    template_name = "dashboard/deletion.html"
    scopes = {"get": Scope.RESTAURANT_DELETE, "post": Scope.RESTAURANT_DELETE}
    # The cancel is the one change a restaurant pending deletion still takes here.
    allowed_while_closing = True

    def _page(
        self, request: HttpRequest, form: DeletionForm | None = None, status: int = 200
    ) -> HttpResponse:
        return self.page(
            request,
            status=status,
            form=form or DeletionForm(),
            deletion=deletion.deletion_status(self.actor.restaurant),
            exports_url=_exports_url(),
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._page(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = DeletionForm(request.POST)
        if not form.is_valid():
            return self._page(request, form, status=400)
        try:
            if form.cleaned_data["action"] == "request":
                restaurant = deletion.restaurant_deletion_request(
                    actor=self.actor, confirm_name=form.cleaned_data["confirm_name"]
                )
                when = restaurant.purge_after.astimezone(restaurant.zone)  # type: ignore[union-attr]
                messages.success(
                    request,
                    f"{restaurant.name} is closed. Its data will be purged on "
                    f"{when:%Y-%m-%d %H:%M %Z} unless you cancel before then.",
                )
            else:
                restaurant = deletion.restaurant_deletion_cancel(actor=self.actor)
                messages.success(
                    request, f"The deletion is cancelled: {restaurant.name} is open again."
                )
        except DomainError as error:
            field = error.attr if error.attr in form.fields else None
            form.add_error(field, error.detail)
            return self._page(request, form, status=error.status)
        return HttpResponseRedirect(reverse("dashboard:deletion"))
