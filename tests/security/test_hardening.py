"""Defences added after review: MFA switch, dev sign-in reach, redirects, limits, roles."""

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from tenants.models import Restaurant
from tests.factories import api_client, run_concurrently, signed_token, token_for

pytestmark = pytest.mark.django_db


def patch(token, body):
    return Client().patch(
        reverse("api-restaurant"),
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


class TestMfaSwitch:
    def test_an_admin_cannot_turn_mfa_off(self, roster, restaurants):
        ours = restaurants[0]
        ours.require_mfa_for_sensitive_actions = True
        ours.save()
        response = patch(
            signed_token(roster[("ours", "admin")]), {"require_mfa_for_sensitive_actions": False}
        )
        assert response.status_code == 403
        assert Restaurant.objects.get(pk=ours.pk).require_mfa_for_sensitive_actions

    def test_an_owner_needs_a_fresh_second_factor_to_turn_it_off(self, roster, restaurants):
        ours = restaurants[0]
        ours.require_mfa_for_sensitive_actions = True
        ours.save()
        owner = roster[("ours", "owner")]
        stale = patch(
            signed_token(owner, fva=(0, -1)), {"require_mfa_for_sensitive_actions": False}
        )
        assert stale.status_code == 403
        assert stale.json()["code"] == "reverification_required"
        assert Restaurant.objects.get(pk=ours.pk).require_mfa_for_sensitive_actions
        fresh = patch(signed_token(owner, fva=(0, 1)), {"require_mfa_for_sensitive_actions": False})
        assert fresh.status_code == 200
        assert not Restaurant.objects.get(pk=ours.pk).require_mfa_for_sensitive_actions

    def test_the_admin_settings_form_leaves_mfa_alone(self, roster, restaurants):
        ours = restaurants[0]
        ours.require_mfa_for_sensitive_actions = True
        ours.save()
        client = Client()
        client.cookies["__session"] = token_for(roster[("ours", "admin")])
        page = client.get("/dashboard/settings").content.decode()
        assert "require_mfa_for_sensitive_actions" not in page
        form = {
            "name": "Ours",
            "timezone": "UTC",
            "currency": "EUR",
            "tax_rate": "0",
            "prep_time_minutes": "20",
            "delivery_minimum": "0",
            "delivery_fee": "0",
        }
        assert client.post("/dashboard/settings", form).status_code == 302
        assert Restaurant.objects.get(pk=ours.pk).require_mfa_for_sensitive_actions


def test_the_roster_wins_over_an_admin_claim_in_the_token(roster):
    kitchen = roster[("ours", "kitchen")]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {signed_token(kitchen, org_role='admin')}")
    assert client.get(reverse("api-me")).json()["role"] == "kitchen"
    assert client.get(reverse("api-staff-list")).status_code == 403


def test_staff_of_a_suspended_restaurant_are_refused(roster, restaurants):
    Restaurant.objects.filter(pk=restaurants[0].pk).update(status=Restaurant.Status.SUSPENDED)
    response = api_client(roster[("ours", "owner")]).get(reverse("api-me"))
    assert response.status_code == 403
    assert response.json()["code"] == "restaurant_suspended"


class TestDevelopmentSignIn:
    def test_not_for_remote_clients(self, roster):
        assert Client().get("/dev/sign-in", REMOTE_ADDR="203.0.113.7").status_code == 404
        assert Client().get("/dev/jwks.json", REMOTE_ADDR="203.0.113.7").status_code == 404

    def test_not_under_a_public_host_name(self, roster, settings):
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "shop.example.com"]
        assert Client().get("/dev/sign-in", HTTP_HOST="shop.example.com").status_code == 404

    def test_the_local_browser_gets_it(self, roster):
        assert Client().get("/dev/sign-in").status_code == 200
        assert Client().get("/dev/jwks.json").json()["keys"][0]["alg"] == "RS256"

    def test_off_when_allowed_hosts_name_a_public_host(self):
        root = Path(__file__).resolve().parents[2]
        code = (
            "import django; django.setup(); "
            "from django.conf import settings; print(settings.DEV_AUTH)"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        env.update(DJANGO_SETTINGS_MODULE="nordkestrel.settings", ALLOWED_HOSTS="shop.example.com")
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
            timeout=120, check=True,
        )  # fmt: skip
        assert result.stdout.strip().splitlines()[-1] == "False"


def test_sign_in_page_never_forwards_off_site(roster):
    page = Client().get("/dashboard/sign-in", {"next": "https://evil.example/x"}).content.decode()
    assert 'data-next="/dashboard/"' in page
    page = Client().get("/dashboard/sign-in", {"next": "/dashboard/staff"}).content.decode()
    assert 'data-next="/dashboard/staff"' in page


def test_production_sign_out_ends_the_clerk_session(roster, settings):
    client = Client()
    client.cookies["__session"] = token_for(roster[("ours", "owner")])
    settings.DEV_AUTH = False
    assert client.get("/dashboard/sign-out").status_code == 405
    response = client.post("/dashboard/sign-out")
    assert response.status_code == 200
    assert b'id="clerk-sign-out"' in response.content
    assert response.cookies["__session"].value == ""


@pytest.mark.usefixtures("frozen_ratelimit_clock")
class TestFailedSignInLimit:
    def test_api_refusals_are_limited_per_ip(self, roster, settings):
        settings.AUTH_FAILURE_RATE = "3/m"
        bad = Client(HTTP_AUTHORIZATION="Bearer not.a.token")
        assert [bad.get(reverse("api-me")).status_code for _ in range(3)] == [401, 401, 401]
        limited = bad.get(reverse("api-me"))
        assert limited.status_code == 429
        assert int(limited["Retry-After"]) >= 1
        # The same IP with a valid token waits too; another IP is unaffected.
        assert api_client(roster[("ours", "owner")]).get(reverse("api-me")).status_code == 429
        other = api_client(roster[("ours", "owner")])
        assert other.get(reverse("api-me"), REMOTE_ADDR="198.51.100.9").status_code == 200

    def test_dashboard_refusals_are_limited_per_ip(self, roster, settings):
        settings.AUTH_FAILURE_RATE = "2/m"
        client = Client()

        def visit():
            client.cookies["__session"] = "not.a.token"  # each refusal deletes the cookie
            return client.get("/dashboard/").status_code

        assert [visit(), visit(), visit()] == [302, 302, 429]

    def test_admin_login_is_limited(self, db, settings):
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        client = Client()
        codes = [
            client.post("/admin/login/", {"username": "x", "password": "y"}).status_code
            for _ in range(11)
        ]
        assert codes[:10] == [200] * 10
        assert codes[10] == 429


@pytest.mark.django_db(transaction=True)
def test_readyz_refuses_a_role_that_bypasses_rls(http, reconnect_as):
    with reconnect_as(USER="postgres"):
        response = http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unsafe_role"


def test_oversized_and_absurd_bodies_are_4xx(roster, settings):
    client = api_client(roster[("ours", "owner")])
    deep = client.patch(
        reverse("api-restaurant"), data="[" * 50_000, content_type="application/json"
    )
    assert deep.status_code == 400
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = client.patch(
        reverse("api-restaurant"),
        data=json.dumps({"name": "x" * 5000}),
        content_type="application/json",
    )
    assert big.status_code == 413
    assert big.json()["code"] == "payload_too_large"


@pytest.mark.django_db(transaction=True)
def test_concurrent_opening_hours_replacements_all_succeed(roster):
    owner = roster[("ours", "owner")]
    body = json.dumps(
        {"weekly": [{"weekday": 0, "opens": "10:00", "closes": "20:00"}], "exceptions": []}
    )

    def put():
        response = api_client(owner).put(
            reverse("api-opening-hours"), data=body, content_type="application/json"
        )
        return response.status_code

    assert run_concurrently(*[put] * 6) == [200] * 6


def test_forwarded_proto_is_believed_only_from_the_proxy(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.TRUSTED_PROXY_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    spoofed = Client().get("/.well-known/security.txt", REMOTE_ADDR="203.0.113.5",
                           HTTP_X_FORWARDED_PROTO="https")  # fmt: skip
    assert spoofed.status_code == 301
    proxied = Client().get("/.well-known/security.txt", REMOTE_ADDR="10.1.2.3",
                           HTTP_X_FORWARDED_PROTO="https")  # fmt: skip
    assert proxied.status_code == 200
