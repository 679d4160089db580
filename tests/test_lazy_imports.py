"""A web worker's start-up leaves the heavy packages that only some requests need unimported.

Whatever a worker imports while it starts stays in its memory for good, in every worker
(bench/export_orders.py measures it; nordkestrel/lean.py lists what is imported where). Each
check runs in a fresh interpreter, as granian starts a worker: Django set up, the WSGI
application and the whole URLconf loaded (every API module), the system checks run and one
/healthz request served; then none of these may be in ``sys.modules``. A top-level import of
one of them anywhere on that path fails here.
"""

import json
import subprocess
import sys

import pytest

from tests.nordkestrel.test_settings import ROOT, production_env

# Imported where they are used: the Stripe SDK (payments/gateway.py), the Resend SDK
# (nordkestrel/mail.py), boto3 through django-storages' S3 backend (the first time a storage is
# used), Pillow (menus/images.py); and what DRF's compat module would import without being
# asked (nordkestrel/lean.py).
LAZY = [
    "stripe",
    "resend",
    "boto3",
    "botocore",
    "storages.backends.s3",
    "PIL",
    "requests",
    "urllib3",
    "pygments",
]

# The worker's start-up, then one request, then what it imported.
WORKER = """
import io, json, sys

from nordkestrel.wsgi import application
from django.core.management import call_command
from django.urls import get_resolver

get_resolver().url_patterns
call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
answer = []
environ = {
    "REQUEST_METHOD": "GET", "PATH_INFO": "/healthz", "QUERY_STRING": "",
    "SERVER_NAME": HOST, "SERVER_PORT": "80", "HTTP_HOST": HOST, "SERVER_PROTOCOL": "HTTP/1.1",
    "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
    "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
    "wsgi.run_once": False,
}
body = b"".join(application(environ, lambda status, headers: answer.append(status)))
print(json.dumps({"status": answer[0], "body": body.decode(), "loaded": sorted(
    name for name in LAZY if name in sys.modules)}))
"""

# Every SDK configured, as in production: the Resend mailer, S3 storages (R2) and Stripe.
SDKS_CONFIGURED = {
    "R2_BUCKET": "media",
    "R2_EXPORTS_BUCKET": "exports",
    "R2_ENDPOINT_URL": "https://account.r2.cloudflarestorage.com",
    "R2_ACCESS_KEY_ID": "key-id",
    "R2_SECRET_ACCESS_KEY": "secret",
    # Nothing connects at start-up: unreachable addresses prove it.
    "DATABASE_URL": "postgres://app@127.0.0.1:9/nordkestrel",
}
ENVIRONMENTS = {
    "production": (production_env(**SDKS_CONFIGURED), "api.nordkestrel.com"),
    # What `make run` and bench/export_orders.py serve: development settings, no SDK keys.
    "development": (
        production_env(
            DJANGO_ENV="development",
            DJANGO_DEBUG="false",
            ALLOWED_HOSTS=None,
            RESEND_API_KEY=None,
            STRIPE_SECRET_KEY=None,
            STRIPE_PUBLISHABLE_KEY=None,
            CLERK_JWKS_URL=None,
            CLERK_ISSUER=None,
            CLERK_AUTHORIZED_PARTIES=None,
            REDIS_URL=None,
            DATABASE_URL=SDKS_CONFIGURED["DATABASE_URL"],
        ),
        "127.0.0.1",
    ),
}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_a_worker_starts_and_serves_without_the_heavy_packages(environment):
    env, host = ENVIRONMENTS[environment]
    code = f"HOST = {host!r}\nLAZY = {LAZY!r}\n{WORKER}"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["status"].startswith("200"), outcome
    assert outcome["loaded"] == [], f"imported at start-up: {outcome['loaded']}"


def test_the_sdks_still_load_when_used():
    """Lazy, not gone: the first use imports each, and DRF's compat kept what the API uses."""
    from rest_framework import compat

    from menus import images
    from nordkestrel import mail
    from nordkestrel.errors import InvalidInput
    from payments import gateway

    assert gateway.livemode() in (True, False)
    with pytest.raises(gateway.SignatureError):
        gateway.verify_event(b"{}", "t=1,v1=00", secret="whsec_test")
    assert "stripe" in sys.modules
    with pytest.raises(InvalidInput):
        images._decode(b"not an image")
    assert "PIL.Image" in sys.modules
    assert mail.describe_error(ValueError("no")) == "ValueError: no"
    assert compat.uritemplate is not None
    assert compat.inflection is not None
    assert compat.postgres_fields is not None
