"""The dashboard's base page: the ``__session`` cookie → (restaurant, staff member, role).

The same chain as the API (staff/access.py), with the token from Clerk's cookie; Django's
CSRF middleware guards every unsafe method. Each page declares the scope it needs per method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from nordkestrel.errors import DomainError, PermissionDeniedError
from restaurants.deletion import deletion_status
from staff.access import AccessChecked, CredentialRefused, FrontDoor, admit, authorize
from staff.auth import Actor, ReverificationRequired
from staff.credentials import SESSION_COOKIE
from staff.roles import Scope
from staff.selectors import memberships_for_user
from tenants.closing import RestaurantClosing, is_closing


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    scope: Scope


NAVIGATION = [
    NavItem("Overview", "dashboard:home", Scope.RESTAURANT_READ),
    NavItem("Kitchen", "dashboard:kitchen", Scope.ORDERS_READ),
    NavItem("Orders", "dashboard:orders", Scope.ORDERS_READ),
    NavItem("Menus", "dashboard:menus", Scope.MENUS_READ),
    NavItem("Sold out", "dashboard:sold-out", Scope.MENUS_AVAILABILITY),
    NavItem("Publish", "dashboard:publish", Scope.MENUS_READ),
    NavItem("Customers", "dashboard:customers", Scope.CUSTOMERS_READ),
    NavItem("Promotions", "dashboard:promotions", Scope.PROMOTIONS_WRITE),
    # The Owner and Admins see the status; connecting needs payments:connect (Owner).
    NavItem("Payments", "dashboard:payments", Scope.RESTAURANT_WRITE),
    NavItem("Payouts", "dashboard:payouts", Scope.PAYOUTS_READ),
    NavItem("Disputes", "dashboard:disputes", Scope.PAYMENTS_DISPUTES),
    NavItem("Staff", "dashboard:staff", Scope.STAFF_READ),
    NavItem("Audit log", "dashboard:audit", Scope.AUDIT_READ),
    NavItem("Exports", "dashboard:exports", Scope.EXPORTS_CREATE),
    NavItem("API keys", "dashboard:api-keys", Scope.API_KEYS_READ),
    NavItem("Webhooks", "dashboard:webhooks", Scope.WEBHOOKS_READ),
    NavItem("Settings", "dashboard:settings", Scope.RESTAURANT_READ),
]


def safe_next(request: HttpRequest, next_url: str) -> str:
    """Where to go after signing in: a path on this site, never somewhere else."""
    if next_url and url_has_allowed_host_and_scheme(
        next_url, {request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return reverse("dashboard:home")


def sign_in_url(next_path: str = "") -> str:
    base = reverse("dev-sign-in") if settings.DEV_AUTH else reverse("dashboard:sign-in")
    return f"{base}?{urlencode({'next': next_path})}" if next_path else base


class DashboardView(AccessChecked, View):
    """Base for every signed-in page; subclasses set ``scopes`` for each handler.

    The chain is the API's (staff/access.py): the Clerk session from the ``__session``
    cookie, the declared scope required, the read-only check while the restaurant is pending
    deletion, the request's transaction. Only the answers differ: sign in again (a redirect),
    an HTML refusal, the read-only page.
    """

    front_door = FrontDoor.DASHBOARD
    sealed_hooks = ("dispatch", "_answer")
    abstract = True
    template_name: ClassVar[str] = ""
    # A page's error answer keeps what its services committed: a refused form or action
    # was rolled back by its service already, and connecting Stripe keeps the new account
    # even when the onboarding link asked for next fails (the page shows that error).
    rollback_error_answers = False

    actor: Actor

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with self.request_transaction(request):
            page = self._answer(request, *args, **kwargs)
        # Pages hold personal data: never kept by a shared device's or a proxy's cache.
        add_never_cache_headers(page)
        patch_cache_control(page, private=True)
        return page

    def _answer(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with self.access_transaction(request) as scope:
            try:
                actor = admit(request, self.front_door, scope)
            except CredentialRefused as refused:
                if refused.status == 401:
                    response = HttpResponseRedirect(sign_in_url(request.get_full_path()))
                    response.delete_cookie(SESSION_COOKIE)
                    return response
                return self.refuse(request, refused.detail)
            if actor is None:
                return HttpResponseRedirect(sign_in_url(request.get_full_path()))
            self.actor = actor
            # Templates show times in the restaurant's zone (|date converts to the active one).
            with timezone.override(actor.restaurant.zone):
                try:
                    authorize(actor, self, request.method or "")
                except RestaurantClosing:
                    # Pending deletion: every page reads, nothing changes but exports and
                    # the deletion's cancel.
                    return self.page(request, status=409, template="dashboard/read_only.html")
                except ReverificationRequired as refused:
                    return self.refuse(request, refused.detail, code=refused.code)
                except PermissionDeniedError:
                    return self.refuse(request, "Your role does not give access to this page.")
        with timezone.override(actor.restaurant.zone):
            page = super().dispatch(request, *args, **kwargs)
        self.keep_writes(page.status_code)
        return page

    def refuse(
        self, request: HttpRequest, detail: str, code: str = "permission_denied"
    ) -> HttpResponse:
        return render(
            request, "error.html", {"status": 403, "code": code, "detail": detail}, status=403
        )

    def context(self, **extra: Any) -> dict[str, Any]:
        actor = self.actor
        closing = deletion_status(actor.restaurant) if is_closing(actor.restaurant) else None
        return {
            "actor": actor,
            "restaurant": actor.restaurant,
            # The banner on every page while the restaurant is pending deletion.
            "closing": closing,
            "can_cancel_deletion": closing is not None and actor.has(Scope.RESTAURANT_DELETE),
            "navigation": [item for item in NAVIGATION if actor.has(item.scope)],
            "memberships": memberships_for_user(actor.member.clerk_user_id or ""),
            "dev_auth": settings.DEV_AUTH,
            **extra,
        }

    def page(
        self, request: HttpRequest, status: int = 200, template: str = "", **extra: Any
    ) -> HttpResponse:
        return render(request, template or self.template_name, self.context(**extra), status=status)

    def domain_error(self, error: DomainError) -> str:
        return error.detail
