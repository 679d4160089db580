"""Schema fuzzing: every operation of ``/api/v1/schema/``, against a live test server.

Schemathesis reads the document the API serves, generates requests from it (its examples,
the boundary values of every declared constraint, random valid and invalid data), follows
the links between operations (create an item, then read, change and delete it) and checks
every answer: never a 5xx (``not_a_server_error``) and always what the document declares for
that status (``response_schema_conformance``). Staff operations run as the Owner of a
restaurant of their own, seeded with a menu, orders, customers and promotions so that ids
resolve; the storefront API is reached on that restaurant's storefront host. The run is made
once per credential the API takes, each on a restaurant seeded alike: the Owner's Clerk
session token, and an API key the Owner created holding every grant (what no key may do
answers 403 there; the storefront API, which reads no credential, only in the first run).

The run is deterministic (fixed seed, derandomized generation, no example database, one
worker) and bounded by the examples per operation. Run it on its own with
``.venv/bin/python -m pytest tests/schema/test_fuzz.py -p no:cacheprovider`` (README).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings

from apikeys.grants import RESOURCES
from nordkestrel.devkeys import development_private_key_pem, key_id
from tests.factories import make_api_key
from tests.schema.fuzz_data import FuzzRestaurant, seed_fuzz_restaurant

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20261201
# Examples per operation and phase: each credential's run stays within a few minutes on CI's
# two cores (README, "Schema fuzzing").
MAX_EXAMPLES = int(os.environ.get("NK_FUZZ_MAX_EXAMPLES", "10"))
RUN_TIMEOUT_SECONDS = 600
# Every resource at its highest level.
EVERY_GRANT = {name: resource.levels[-1].value for name, resource in RESOURCES.items()}

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def fuzz_restaurant(stripe_stand_in) -> FuzzRestaurant:
    return seed_fuzz_restaurant(
        stand_in=stripe_stand_in, now=datetime.now(UTC) + timedelta(minutes=1)
    )


def _st_environment(live_server, restaurant: FuzzRestaurant, credential: str) -> dict[str, str]:
    owner = restaurant.owner
    development_private_key_pem(settings.DATA_DIR)  # created on first use
    host = live_server.url.split("://", 1)[1]
    api_key = {}
    if credential == "api_key":
        api_key["NK_FUZZ_API_KEY"] = make_api_key(owner, EVERY_GRANT, name="Schema fuzzing")
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.schema.fuzz_hooks",
        "NK_FUZZ_KEY_FILE": str(settings.DATA_DIR / "dev-signing-key.pem"),
        "NK_FUZZ_KEY_ID": key_id(settings.DATA_DIR),
        "NK_FUZZ_ISSUER": settings.CLERK_ISSUER,
        "NK_FUZZ_AZP": settings.CLERK_AUTHORIZED_PARTIES[0],
        "NK_FUZZ_USER": owner.clerk_user_id or "",
        "NK_FUZZ_ORG": restaurant.restaurant.clerk_organization_id or "",
        "NK_FUZZ_EMAIL": owner.email,
        "NK_FUZZ_STOREFRONT_HOST": f"{restaurant.restaurant.slug}.{host}",
        **api_key,
    }


@pytest.mark.parametrize("credential", ["clerk_session", "api_key"])
def test_every_operation_answers_as_its_schema_says(
    live_server, fuzz_restaurant, settings, tmp_path, capsys, credential
):
    # Every fuzzed request comes from one IP and one Owner: the per-IP and per-restaurant
    # limits (checkout, promotion codes, refused tokens, exports, the API key's requests per
    # minute) would answer 429 to most of them and hide what the operations behind them
    # answer.
    for name in ("CHECKOUT_RATE", "PROMOTION_REDEEM_RATE", "AUTH_FAILURE_RATE", "EXPORT_RATE",
                 "EXPORT_RATE_PER_RESTAURANT"):  # fmt: skip
        setattr(settings, name, "100000/m")
    if credential == "api_key":
        # The most a restaurant may set (GET api-keys/settings answers it), above the run's rate.
        settings.API_KEY_RATE_LIMIT = 10_000
    # NK_FUZZ_REPORT_DIR keeps the reports (JUnit, JSON, the full output) after the run, one
    # folder per credential.
    reports = Path(os.environ.get("NK_FUZZ_REPORT_DIR") or tmp_path) / credential
    reports.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file", str(CONFIG),
        "run", f"{live_server.url}/api/v1/schema/?format=json",
        "--url", live_server.url,
        "--checks", "not_a_server_error,response_schema_conformance",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--generation-deterministic",
        "--workers", "1",
        "--request-timeout", "30",
        "--report", "junit,json",
        "--report-dir", str(reports),
        "--no-color",
        # The storefront API reads no credential: the Clerk session's run covers it.
        *(["--exclude-tag", "storefront"] if credential == "api_key" else []),
    ]  # fmt: skip
    served = _ServedRequests()
    logging.getLogger("nordkestrel.request").addHandler(served)
    try:
        finished = subprocess.run(
            command,
            cwd=ROOT,
            env=_st_environment(live_server, fuzz_restaurant, credential),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
    finally:
        logging.getLogger("nordkestrel.request").removeHandler(served)
    output = finished.stdout + finished.stderr
    (reports / "output.txt").write_text(output)
    reported = sorted(reports.glob("*.json"))
    summary = _summary(json.loads(reported[-1].read_text())) if reported else "no report"
    summary += f"; the server answered {served.count} requests, {served.errors} of them 5xx"
    with capsys.disabled():
        print(f"\nschema fuzzing with {credential}: {summary}")
    assert finished.returncode == 0, f"{summary}\n{output[-20000:]}"
    assert reported, output[-20000:]
    assert served.errors == 0, summary


class _ServedRequests(logging.Handler):
    """Counts the live server's request log lines (nordkestrel.middleware), and its 5xx."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0
        self.errors = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.errors += getattr(record, "status", 0) >= 500


def _summary(report: dict) -> str:
    operations, cases = report["operations"], report["test_cases"]
    return (
        f"{operations['tested']}/{operations['total']} operations, "
        f"{cases['generated']} test cases, "
        f"{cases['unique_failures']} failures, {cases['errored']} errors, "
        f"{report['running_time']:.0f} s"
    )
