"""Keeping what every process imports at start-up small.

Whatever a web worker imports while it starts stays in its memory for good, in each worker.
So the heavy packages that only some requests need are imported where they are used, never at
module level: ``stripe`` (payments/gateway.py), ``resend`` (nordkestrel/mail.py), Pillow
(menus/images.py) and boto3 through django-storages (only when an S3 storage is first used).
tests/test_lazy_imports.py loads the WSGI application and the URLconf in a fresh interpreter
and checks that none of them, nor the packages below, was imported.

The packages below are not ours to import lazily: Django REST framework's compat module imports
them whenever they are installed, for features this API does not use. ``requests`` (several
megabytes with urllib3 and charset-normalizer) is only for DRF's test ``RequestsClient``;
Pygments and Markdown for the browsable API, which the API does not serve (JSON only). They
are installed because the Stripe and Resend SDKs and the test tools need them, and those
still import them normally, when they are used. (PyYAML stays: drf-spectacular, which the
API's views use for their schema, imports it anyway.)
"""

from __future__ import annotations

import importlib
import sys

DRF_UNUSED_OPTIONAL_PACKAGES = ("requests", "pygments", "markdown")


def import_rest_framework_compat() -> None:
    """Import DRF's compat module as if its unused optional packages were not installed.

    Called at the top of the settings, before anything imports DRF. In a process where DRF's
    compat module is already imported, it does nothing (that process just uses more memory).
    """
    if "rest_framework.compat" in sys.modules:
        return
    hidden = [name for name in DRF_UNUSED_OPTIONAL_PACKAGES if name not in sys.modules]
    for name in hidden:
        # A None entry makes `import name` raise ImportError, which DRF takes for "absent".
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        importlib.import_module("rest_framework.compat")
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
