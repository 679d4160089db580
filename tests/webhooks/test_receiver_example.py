"""The receiver of docs/examples/webhook_receiver.py, run as the docs tell integrators to run
it, against messages built and signed the way the sender signs them (webhooks.messages)."""

from __future__ import annotations

import importlib.util
import sys
import threading
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest
from django.utils import timezone

from webhooks import messages

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "webhook_receiver.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_receiver_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def running(example):
    """The example's server on a free loopback port, with the endpoint's secret, recording
    what its work function was handed."""
    secret = messages.new_secret()
    handled: list[tuple[str, dict]] = []
    receiver = example.Receiver(
        secret, lambda message_id, message: handled.append((message_id, message))
    )
    httpd = example.server(receiver, 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield secret, receiver, f"http://127.0.0.1:{httpd.server_address[1]}/", handled
    httpd.shutdown()
    httpd.server_close()
    receiver.close()


def signed(message_id: str, keys: list[str], data: dict, *, sent_ago=timedelta(0)):
    now = timezone.now()
    body = messages.body("order.placed", now, data)
    headers = messages.signature_headers(message_id, now - sent_ago, body, keys)
    return body, dict(headers)


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(  # noqa: S310 - the test's own loopback server
        url, data=body, headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


def test_a_signed_message_is_accepted_handled_once_and_a_repeat_changes_nothing(running):
    secret, receiver, url, handled = running
    body, headers = signed("0193a5e0-0000-7000-8000-000000000001", [secret], {"order": {"id": 7}})

    assert post(url, body, headers) == 204
    assert post(url, body, headers) == 200  # the same webhook-id again: a duplicate
    receiver.drain()

    [(message_id, message)] = handled
    assert message_id == headers["webhook-id"]
    assert message["type"] == "order.placed"
    assert message["data"] == {"order": {"id": 7}}


def test_during_a_rotation_either_secret_verifies(running):
    secret, receiver, url, handled = running
    previous = messages.new_secret()
    body, headers = signed("msg-rotated", [secret, previous], {"n": 1})
    assert " " in headers["webhook-signature"]
    assert post(url, body, headers) == 204
    receiver.drain()
    assert [message_id for message_id, _ in handled] == ["msg-rotated"]


def test_what_is_not_ours_is_refused_and_never_handled(running):
    secret, receiver, url, handled = running
    body, headers = signed("msg-1", [secret], {"n": 1})
    assert post(url, body.replace(b'"n":1', b'"n":2'), headers) == 400
    other_body, other = signed("msg-2", [messages.new_secret()], {"n": 1})
    assert post(url, other_body, other) == 400
    stale_body, stale = signed("msg-3", [secret], {"n": 1}, sent_ago=timedelta(minutes=10))
    assert post(url, stale_body, stale) == 400
    assert post(url, body, {}) == 400
    receiver.drain()
    assert handled == []
