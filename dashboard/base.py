"""The dashboard's request chain: the ``__session`` cookie → (restaurant, staff member, role).

The same chain as the API (staff.auth), with the token from Clerk's cookie; Django's CSRF
middleware guards every unsafe method. Each page declares the scope it needs per method.
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

from nordkestrel.errors import DomainError
from nordkestrel.ratelimit import auth_failures
from staff.auth import Actor, authenticate_token
from staff.clerk import TokenRejected
from staff.roles import Scope
from staff.selectors import memberships_for_user
from tenants.context import tenant_scope
from tenants.deletion import deletion_status, is_closing

SESSION_COOKIE = "__session"


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    scope: str


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


class DashboardView(View):
    """Base for every signed-in page; subclasses set ``scopes`` for each handler."""

    scopes: ClassVar[dict[str, str]] = {}
    template_name: ClassVar[str] = ""
    # Whether the page's POST still runs while the restaurant is pending deletion (exports,
    # the deletion page, switching restaurants); every other POST is refused.
    allowed_while_closing: ClassVar[bool] = False
    # Whether the request is one transaction; a page whose service commits its own steps
    # around a call to Stripe sets False (see staff.api_base.TenantAPIView.atomic_request):
    # its handler then runs after the sign-in's transaction, entering the tenant itself.
    atomic_request: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "dispatch" in cls.__dict__:
            raise TypeError(f"{cls.__name__} may not override dispatch.")
        handlers = [m for m in ("get", "post") if hasattr(cls, m)]
        missing = [m for m in handlers if m not in cls.scopes]
        if missing:
            raise TypeError(f"{cls.__name__} must declare scopes for {missing}.")

    actor: Actor

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        token = request.COOKIES.get(SESSION_COOKIE, "")
        if not token:
            return HttpResponseRedirect(sign_in_url(request.get_full_path()))
        auth_failures.check(request)
        page: HttpResponseBase | None = None
        with tenant_scope() as scope:
            try:
                self.actor = authenticate_token(token, scope)
            except TokenRejected as rejected:
                auth_failures.record(request)
                if rejected.status == 401:
                    response = HttpResponseRedirect(sign_in_url(request.get_full_path()))
                    response.delete_cookie(SESSION_COOKIE)
                    return response
                return self.refuse(request, rejected.detail)
            request.restaurant = self.actor.restaurant  # type: ignore[attr-defined]
            if not self.allows((request.method or "").lower()):
                return self.refuse(request, "Your role does not give access to this page.")
            # Templates show times in the restaurant's zone (|date converts to the active one).
            with timezone.override(self.actor.restaurant.zone):
                if (
                    request.method not in ("GET", "HEAD", "OPTIONS")
                    and is_closing(self.actor.restaurant)
                    and not self.allowed_while_closing
                ):
                    # Pending deletion: every page reads, nothing changes but exports and
                    # the deletion's cancel.
                    page = self.page(request, status=409, template="dashboard/read_only.html")
                elif self.atomic_request:
                    page = super().dispatch(request, *args, **kwargs)
        if page is None:
            with timezone.override(self.actor.restaurant.zone):
                page = super().dispatch(request, *args, **kwargs)
        # Pages hold personal data: never kept by a shared device's or a proxy's cache.
        add_never_cache_headers(page)
        patch_cache_control(page, private=True)
        return page

    def allows(self, method: str) -> bool:
        """Whether the signed-in member may send ``method`` here: HEAD as GET, OPTIONS with
        any of the page's scopes; a method the page has no handler for goes on to Django's
        405."""
        if method == "options":
            return any(self.actor.has(scope) for scope in self.scopes.values())
        scope = self.scopes.get("get" if method == "head" else method)
        if scope is None:
            return not hasattr(self, method)
        return self.actor.has(scope)

    def refuse(self, request: HttpRequest, detail: str) -> HttpResponse:
        return render(
            request,
            "error.html",
            {"status": 403, "code": "permission_denied", "detail": detail},
            status=403,
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
