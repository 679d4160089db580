"""Development sign-in: pick a restaurant and a role, get a signed session cookie.

Mounted only when settings.DEV_AUTH (never in production); the token it sets is verified by
the same code path as Clerk's.
"""

from __future__ import annotations

import ipaddress

from django import forms
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.request import split_domain_port
from django.shortcuts import render
from django.urls import reverse

from dashboard.base import safe_next
from nordkestrel.devkeys import development_jwks
from staff.credentials import SESSION_COOKIE
from staff.dev import mint_token
from staff.models import StaffMember
from tenants.context import tenant_bypass

SESSION_HOURS = 8
LOCAL_HOST_NAMES = {"localhost", "127.0.0.1", "[::1]", "testserver"}


def _is_local(request: HttpRequest) -> bool:
    host, _ = split_domain_port(request.get_host())
    client = getattr(request, "client_ip", "") or ""
    try:
        loopback = ipaddress.ip_address(client).is_loopback
    except ValueError:
        loopback = False
    local_host = host in LOCAL_HOST_NAMES or host.endswith(".localhost")
    return loopback and local_host


def _require_dev(request: HttpRequest) -> None:
    """Development sign-in exists only in development, for a browser on this machine."""
    if not settings.DEV_AUTH or not _is_local(request):
        raise Http404


def session_response(
    request: HttpRequest, *, clerk_user_id: str, organization_id: str, email: str, next_url: str
) -> HttpResponse:
    _require_dev(request)
    origin = f"{request.scheme}://{request.get_host()}"
    azp = origin if origin in settings.CLERK_AUTHORIZED_PARTIES else None
    token = mint_token(
        clerk_user_id=clerk_user_id,
        organization_id=organization_id,
        email=email,
        azp=azp,
        lifetime_seconds=SESSION_HOURS * 3600,
    )
    response = HttpResponseRedirect(safe_next(request, next_url))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        secure=request.is_secure(),
        samesite="Lax",
    )
    return response


class DevSignInForm(forms.Form):
    member = forms.IntegerField()
    next = forms.CharField(required=False)


def dev_sign_in(request: HttpRequest) -> HttpResponse:
    _require_dev(request)
    with tenant_bypass():
        members = list(
            StaffMember.unscoped.select_related("restaurant")
            .filter(active=True, clerk_user_id__isnull=False)
            .exclude(restaurant__clerk_organization_id=None)
            .order_by("restaurant__name", "pk")
        )
    if request.method == "POST":
        form = DevSignInForm(request.POST)
        chosen = None
        if form.is_valid():
            chosen = next((m for m in members if m.pk == form.cleaned_data["member"]), None)
        if chosen is None:
            return render(
                request,
                "dashboard/dev_sign_in.html",
                {"members": members, "error": True},
                status=400,
            )
        return session_response(
            request,
            clerk_user_id=chosen.clerk_user_id or "",
            organization_id=chosen.restaurant.clerk_organization_id or "",
            email=chosen.email,
            next_url=form.cleaned_data["next"] or reverse("dashboard:home"),
        )
    return render(
        request,
        "dashboard/dev_sign_in.html",
        {"members": members, "next": request.GET.get("next", "")},
    )


def dev_jwks(request: HttpRequest) -> JsonResponse:
    """The development key set, published as Clerk publishes its own."""
    _require_dev(request)
    return JsonResponse(development_jwks(settings.DATA_DIR))
