"""The CSRF check is bound to the request's own origin (nordkestrel/csrf.py).

A ``csrftoken`` cookie is not bound to its host: a sibling subdomain (a storefront) can set
one for the parent domain and post a form carrying the same value. Every unsafe, CSRF-checked
request must therefore name where it comes from (``Origin``, or ``Referer``), on plain HTTP
too, and a storefront never counts as the dashboard's origin.
"""

import json
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.test import Client, override_settings
from django.urls import reverse

from staff.models import StaffMember
from tenants.context import tenant_context
from tests.factories import token_for
from tests.nordkestrel.test_settings import ROOT, production_env

pytestmark = pytest.mark.django_db

APP_ORIGIN = "http://testserver"
STOREFRONT_ORIGIN = "http://ours.localhost"
PLANTED = "p" * 32  # a well-formed token the attacker chose and set as a cookie
INVITE = {"action": "invite", "email": "planted@example.com", "name": "P", "role": "owner"}


def owner_client(roster, **kwargs) -> Client:
    client = Client(enforce_csrf_checks=True, raise_request_exception=False, **kwargs)
    client.cookies["__session"] = token_for(roster[("ours", "owner")])
    return client


def planted(roster) -> Client:
    """The owner's browser, carrying a CSRF cookie set from a sibling subdomain."""
    client = owner_client(roster)
    client.cookies[settings.CSRF_COOKIE_NAME] = PLANTED
    return client


def post_invite(client: Client, token: str = PLANTED, **headers):
    return client.post("/dashboard/staff", {**INVITE, "csrfmiddlewaretoken": token}, **headers)


def invited(roster) -> bool:
    with tenant_context(roster[("ours", "owner")].restaurant):
        return StaffMember.objects.filter(email=INVITE["email"]).exists()


def page_token(client: Client, path: str = "/dashboard/staff") -> str:
    html = client.get(path).content.decode()
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found, path
    return found.group(1)


class TestPlantedCookie:
    def test_without_origin_or_referer_is_refused(self, roster):
        response = post_invite(planted(roster))
        assert response.status_code == 403
        assert b"CSRF" in response.content
        assert not invited(roster)

    def test_with_a_storefront_origin_is_refused(self, roster):
        response = post_invite(planted(roster), headers={"Origin": STOREFRONT_ORIGIN})
        assert response.status_code == 403
        assert not invited(roster)

    def test_with_a_storefront_referer_is_refused(self, roster):
        response = post_invite(planted(roster), headers={"Referer": f"{STOREFRONT_ORIGIN}/cart"})
        assert response.status_code == 403
        assert not invited(roster)

    @pytest.mark.parametrize(
        "origin",
        [
            "null",
            "http://testserver.evil.example",
            "http://evil.example",
            "https://testserver",  # the scheme is part of the origin
            "http://testserver/dashboard/",
        ],
    )
    def test_with_any_other_origin_is_refused(self, roster, origin):
        response = post_invite(planted(roster), headers={"Origin": origin})
        assert response.status_code == 403
        assert not invited(roster)

    @pytest.mark.parametrize("referer", ["garbage", "/dashboard/staff", "http://user@testserver/"])
    def test_with_a_referer_that_names_no_origin_is_refused(self, roster, referer):
        response = post_invite(planted(roster), headers={"Referer": referer})
        assert response.status_code == 403
        assert not invited(roster)


class TestOwnOrigin:
    def test_a_form_posted_with_the_apps_origin_passes(self, roster):
        client = owner_client(roster)
        token = page_token(client)
        response = post_invite(client, token, headers={"Origin": APP_ORIGIN})
        assert response.status_code == 302
        assert invited(roster)

    def test_a_referer_from_the_app_host_passes_without_origin(self, roster):
        client = owner_client(roster)
        token = page_token(client)
        response = post_invite(client, token, headers={"Referer": f"{APP_ORIGIN}/dashboard/staff"})
        assert response.status_code == 302
        assert invited(roster)

    def test_the_token_is_still_checked_with_the_right_origin(self, roster):
        client = owner_client(roster)
        page_token(client)
        response = post_invite(client, "x" * 32, headers={"Origin": APP_ORIGIN})
        assert response.status_code == 403
        assert not invited(roster)

    def test_over_https_the_origin_must_be_https(self, roster):
        client = owner_client(roster)
        token = page_token(client)
        refused = post_invite(client, token, secure=True, headers={"Origin": APP_ORIGIN})
        assert refused.status_code == 403
        assert not invited(roster)
        response = post_invite(client, token, secure=True, headers={"Origin": "https://testserver"})
        assert response.status_code == 302
        assert invited(roster)


class TestTrustedOrigins:
    @override_settings(CSRF_TRUSTED_ORIGINS=["https://console.example.com"])
    def test_a_trusted_origin_passes(self, roster):
        client = owner_client(roster)
        token = page_token(client)
        response = post_invite(client, token, headers={"Origin": "https://console.example.com"})
        assert response.status_code == 302

    @override_settings(CSRF_TRUSTED_ORIGINS=["http://*.localhost"])
    def test_a_wildcard_never_trusts_a_storefront(self, roster):
        client = owner_client(roster)
        token = page_token(client)
        response = post_invite(client, token, headers={"Origin": STOREFRONT_ORIGIN})
        assert response.status_code == 403
        assert not invited(roster)


class TestExempt:
    def test_the_api_with_a_bearer_token_needs_no_origin(self, roster):
        client = Client(
            enforce_csrf_checks=True,
            HTTP_AUTHORIZATION=f"Bearer {token_for(roster[('ours', 'owner')])}",
        )
        response = client.patch(
            reverse("api-restaurant"),
            data=json.dumps({"name": "Renamed"}),
            content_type="application/json",
        )
        assert response.status_code == 200

    def test_safe_methods_need_no_origin(self, roster):
        assert owner_client(roster).get("/dashboard/staff").status_code == 200


def test_a_check_fails_when_the_bound_middleware_is_not_installed(settings):
    assert not [m for m in run_checks(tags=["security"]) if m.id == "nordkestrel.E001"]
    settings.MIDDLEWARE = [
        "django.middleware.csrf.CsrfViewMiddleware" if "csrf" in path else path
        for path in settings.MIDDLEWARE
    ]
    assert [m.id for m in run_checks(tags=["security"]) if m.id == "nordkestrel.E001"] == [
        "nordkestrel.E001"
    ]


def test_production_cookies_are_host_prefixed_secure_and_host_only():
    """The Set-Cookie headers Django's own middleware writes with the production settings."""
    code = """
import django
django.setup()
from django.conf import settings
from django.core.checks import run_checks
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.test import RequestFactory
from nordkestrel.csrf import HostBoundCsrfViewMiddleware

settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
request = RequestFactory().get("/", secure=True)
csrf = HostBoundCsrfViewMiddleware(lambda request: HttpResponse())
sessions = SessionMiddleware(lambda request: HttpResponse())
csrf.process_request(request)
sessions.process_request(request)
get_token(request)
request.session["seen"] = True
response = HttpResponse()
csrf.process_response(request, response)
sessions.process_response(request, response)
for cookie in response.cookies.values():
    print(cookie.output(header="Set-Cookie:"))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("Set-Cookie:")]
    cookies = {line.split(":", 1)[1].strip().split("=", 1)[0]: line for line in lines}
    assert set(cookies) == {"__Host-csrftoken", "__Host-sessionid"}
    for line in cookies.values():
        attributes = [part.strip().lower() for part in line.split(";")[1:]]
        assert "secure" in attributes
        assert "path=/" in attributes
        assert not any(attribute.startswith("domain") for attribute in attributes)
