"""Settings for bench/order_placement.py: the project's own, plus the baseline views' URLs.

Served with ``DJANGO_SETTINGS_MODULE=bench_settings`` and ``bench/`` on ``PYTHONPATH``; nothing
here reaches the product. The middleware stack, cache, database and rate limits are the
project's; ``BENCH_RATELIMIT=false`` switches django-ratelimit off to measure what its checks
cost on the write path.
"""

from nordkestrel import env
from nordkestrel.settings import *  # noqa: F403

ROOT_URLCONF = "bench_urls"
RATELIMIT_ENABLE = env.get_bool("BENCH_RATELIMIT", True)
# An email sent in the process (a task run at once) goes nowhere: no mail API, no console.
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.dummy.EmailBackend"}}
