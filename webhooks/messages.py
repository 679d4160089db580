"""What is sent: the body of a message, its Standard Webhooks headers, the endpoint's secrets,
and when a failed delivery is tried again."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from standardwebhooks import Webhook

from nordkestrel import events

SECRET_PREFIX = "whsec_"  # noqa: S105 - the form of every secret, not a secret
# A rotated secret keeps signing (a second signature) this long.
ROTATION_OVERLAP = timedelta(hours=24)
# The wait before each attempt: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h
# and 24 h (about 3 days and 3 hours in all), each with ±20 % jitter.
SCHEDULE = tuple(
    timedelta(seconds=s) for s in (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
)
MAX_ATTEMPTS = len(SCHEDULE)
JITTER = 0.2
# The longest a Retry-After is followed.
MAX_RETRY_AFTER = timedelta(hours=24)
TEST_EVENT_TYPE = "webhook.test"


def new_secret() -> str:
    """``whsec_`` and the base64 of 32 random bytes (Standard Webhooks' secret form)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def document(event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    """The Standard Webhooks payload ``{type, timestamp, data}`` (the events API lists each
    event as this, with its id and version)."""
    return {"type": event_type, "timestamp": events.timestamp(occurred_at), "data": data}


def body(event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> bytes:
    """The Standard Webhooks payload, compact JSON."""
    payload = document(event_type, occurred_at, data)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signature_headers(
    message_id: str, sent_at: datetime, payload: bytes, keys: Iterable[str]
) -> list[tuple[str, str]]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (one ``v1,`` signature
    per secret, space-separated)."""
    signatures = [Webhook(key).sign(message_id, sent_at, payload) for key in keys]
    return [
        ("webhook-id", message_id),
        ("webhook-timestamp", str(int(sent_at.timestamp()))),
        ("webhook-signature", " ".join(signatures)),
    ]


def signing_keys(
    secret: str, previous: str, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The current secret, and the previous one while its overlap lasts."""
    keys = [secret]
    if previous and previous_expires_at is not None and previous_expires_at > now:
        keys.append(previous)
    return keys


def next_attempt(
    attempts: int, now: datetime, asked: float | None = None, *, jitter: float | None = None
) -> datetime | None:
    """When to try again after ``attempts`` failed ones (None: no attempts are left).
    ``asked``: the seconds a Retry-After asked for, followed up to 24 hours."""
    if attempts >= MAX_ATTEMPTS:
        return None
    spread = jitter if jitter is not None else secrets.SystemRandom().uniform(-JITTER, JITTER)
    wait = SCHEDULE[attempts] * (1 + spread)
    if asked is not None:
        wait = max(wait, min(timedelta(seconds=asked), MAX_RETRY_AFTER))
    return now + wait


def test_payload(restaurant_id: int) -> dict[str, Any]:
    return {
        "restaurant_id": restaurant_id,
        "message": "A test message: the endpoint is reached and the signature verifies.",
    }
