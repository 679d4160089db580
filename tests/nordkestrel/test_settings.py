"""Production refuses to start without its secrets, and passes Django's deploy check."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = [
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "DATABASE_PLATFORM_URL",
    "REDIS_URL",
    "CLERK_ISSUER",
    "CLERK_AUTHORIZED_PARTIES",
    "CLERK_PUBLISHABLE_KEY",
    "TRUSTED_PROXY_NETWORKS",
    "RESEND_API_KEY",
    "ORDER_EMAIL_FROM",
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_CONNECT_WEBHOOK_SECRET",
]


def production_env(**overrides):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in REQUIRED
        and not key.startswith(("DJANGO_", "CLERK_", "ALLOWED_HOSTS", "STRIPE_", "PLATFORM_FEE_"))
    }
    env.update(
        DJANGO_ENV="production",
        DJANGO_SETTINGS_MODULE="nordkestrel.settings",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="api.nordkestrel.com,.nordkestrel.app",
        DATABASE_URL="postgres://app@db.internal:5432/nordkestrel",
        DATABASE_PLATFORM_URL="postgres://app_platform@db.internal:5432/nordkestrel",
        REDIS_URL="redis://cache.internal:6379/0",
        CLERK_ISSUER="https://clerk.nordkestrel.com",
        CLERK_AUTHORIZED_PARTIES="https://app.nordkestrel.com",
        CLERK_PUBLISHABLE_KEY="pk_live_example",
        CLERK_JWKS_URL="https://clerk.nordkestrel.com/.well-known/jwks.json",
        TRUSTED_PROXY_NETWORKS="10.0.0.0/8",
        RESEND_API_KEY="re_example",
        ORDER_EMAIL_FROM="orders@mail.nordkestrel.com",
        STRIPE_SECRET_KEY="sk_live_example",
        STRIPE_PUBLISHABLE_KEY="pk_live_example",
        STRIPE_WEBHOOK_SECRET="whsec_platform_example",
        STRIPE_CONNECT_WEBHOOK_SECRET="whsec_connect_example",
    )
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def manage(*args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("missing", REQUIRED)
def test_production_refuses_to_start_without(missing):
    result = manage("check", env=production_env(**{missing: None}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


@pytest.mark.parametrize(
    "platform_url", [None, "postgres://app_platform@db.internal:5432/nordkestrel"]
)
def test_a_production_web_process_runs_without_the_platform_role_and_never_crosses(
    platform_url,
):
    """Web processes get no platform credential, and ignore one their environment names:
    platform code there refuses to run."""
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "from tenants.context import PlatformRoleUnavailable, tenant_bypass\n"
        "try:\n with tenant_bypass(): pass\n"
        "except PlatformRoleUnavailable: print(s.PLATFORM_ROLE_AVAILABLE, 'refused')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_env(DATABASE_PLATFORM_URL=platform_url, NORDKESTREL_PROCESS="web"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout.strip().splitlines()[-1:] == ["False refused"], result.stderr


def test_production_refuses_an_empty_secret():
    result = manage("check", env=production_env(SECRET_KEY=""))
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_a_token_key():
    result = manage("check", env=production_env(CLERK_JWKS_URL=None, CLERK_JWT_KEY=None))
    assert result.returncode != 0
    assert "CLERK_JWKS_URL or CLERK_JWT_KEY" in result.stderr


def test_production_refuses_private_webhook_targets():
    result = manage("check", env=production_env(WEBHOOK_ALLOW_PRIVATE_ADDRESSES="true"))
    assert result.returncode != 0
    assert "WEBHOOK_ALLOW_PRIVATE_ADDRESSES" in result.stderr
    assert (
        manage("check", env=production_env(WEBHOOK_ALLOW_PRIVATE_ADDRESSES="false")).returncode == 0
    )


def test_production_has_no_development_sign_in():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "from django.urls import get_resolver; "
        "names = [n for n in get_resolver().reverse_dict if isinstance(n, str)]; "
        "print(s.DEV_AUTH, s.CLERK_JWT_KEY == '', sorted(n for n in names if 'dev' in n))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "False True []"


def test_unknown_environment_is_refused():
    result = manage("check", env=production_env(DJANGO_ENV="staging"))
    assert result.returncode != 0
    assert "DJANGO_ENV" in result.stderr


def test_deploy_check_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "DEBUG", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_values():
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.DEBUG, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.CSRF_COOKIE_HTTPONLY, "
        "list(s.SECURE_PROXY_SSL_HEADER), s.CACHES['default']['BACKEND']]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_env(DJANGO_DEBUG="true"),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    values = result.stdout.strip().splitlines()[-1]
    assert values == (
        "[false, true, 63072000, true, true, true, true, true, true, "
        '["HTTP_X_FORWARDED_PROTO", "https"], "nordkestrel.cache.RedisCache"]'
    )
