"""Rate-limit counters live in the shared cache, so separate processes share one limit."""

import json
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[2]

# One "web process": counts three requests from the same client IP against a 5/h limit (an
# hour-long window, so the two processes almost surely share one).
PROCESS = """
import json, django
django.setup()
from django.test import RequestFactory
from django_ratelimit.core import get_usage
request = RequestFactory().post("/checkout", REMOTE_ADDR="203.0.113.50")
usages = [
    get_usage(request, group="shared-test", key="ip", rate="5/h", method="POST", increment=True)
    for _ in range(3)
]
print(json.dumps([[u["count"], u["should_limit"]] for u in usages]))
"""


def run_process():
    result = subprocess.run(
        [sys.executable, "-c", PROCESS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_two_processes_share_one_limit():
    require_service("Redis (REDIS_URL)", bool(settings.REDIS_URL))
    assert settings.RATELIMIT_USE_CACHE == "ratelimit"
    assert settings.CACHES["ratelimit"]["BACKEND"] == "nordkestrel.cache.RedisCache"
    first = run_process()
    second = run_process()
    assert first == [[1, False], [2, False], [3, False]]
    assert second == [[4, False], [5, False], [6, True]]
