"""The Resend mail backend, through the real SDK against a loopback stand-in for Resend, and
which mailer each environment gets."""

import base64
import json
import logging
import subprocess
import sys
import warnings
from email.message import MIMEPart

import pytest
import resend
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives, InvalidMailer

from tests.nordkestrel.test_settings import ROOT, production_env
from tests.support.resend_server import API_KEY, ResendStandIn


@pytest.fixture
def resend_api(settings, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with ResendStandIn() as server:
        settings.MAILERS = server.mailers("resend")
        yield server


def message(**fields):
    defaults = {
        "subject": "Your table",
        "body": "See you at eight.",
        "from_email": "Café Nord <orders@example.com>",
        "to": ["ada@example.com"],
    }
    return EmailMultiAlternatives(**(defaults | fields))


def test_a_message_maps_to_resends_fields(resend_api):
    email = message(
        to=["ada@example.com", "Grace Hopper <grace@example.com>"],
        cc=["cc@example.com"],
        bcc=["bcc@example.com"],
        reply_to=["desk@example.com"],
        headers={"X-Order": "12", "List-Unsubscribe": "<https://example.com/u>"},
    )
    email.attach_alternative("<p>See you at <b>eight</b>.</p>", "text/html")
    email.attach("menu.txt", "Soup\nBread\n", "text/plain")
    email.attach("logo.png", b"\x89PNG\r\n\x1a\n\x00\xff", "image/png")
    inline = MIMEPart()
    inline.set_content(b"GIF89a", maintype="image", subtype="gif", filename="dot.gif", cid="<dot>")
    email.attach(inline)

    assert email.send(using="resend") == 1

    (request,) = resend_api.requests
    assert (request.method, request.path) == ("POST", "/emails")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert "idempotency-key" not in request.headers
    assert request.body == {
        "from": "Café Nord <orders@example.com>",
        "to": ["ada@example.com", "Grace Hopper <grace@example.com>"],
        "cc": ["cc@example.com"],
        "bcc": ["bcc@example.com"],
        "reply_to": ["desk@example.com"],
        "subject": "Your table",
        "text": "See you at eight.",
        "html": "<p>See you at <b>eight</b>.</p>",
        "headers": {"X-Order": "12", "List-Unsubscribe": "<https://example.com/u>"},
        "attachments": [
            {
                "filename": "menu.txt",
                "content": base64.b64encode(b"Soup\nBread\n").decode(),
                "content_type": "text/plain",
            },
            {
                "filename": "logo.png",
                "content": base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\xff").decode(),
                "content_type": "image/png",
            },
            {
                "filename": "dot.gif",
                "content": base64.b64encode(b"GIF89a").decode(),
                "content_type": "image/gif",
                "content_id": "dot",
            },
        ],
    }


def test_an_html_only_message_and_header_overrides(resend_api):
    email = EmailMessage(
        subject="Hi",
        body="<p>Hi</p>",
        from_email="orders@example.com",
        to=["ada@example.com"],
        headers={"From": "Desk <desk@example.com>", "Reply-To": "help@example.com"},
    )
    email.content_subtype = "html"

    assert email.send(using="resend") == 1

    body = resend_api.requests[0].body
    assert body["html"] == "<p>Hi</p>"
    assert "text" not in body
    assert body["from"] == "Desk <desk@example.com>"
    assert body["reply_to"] == "help@example.com"
    assert "headers" not in body


def test_a_to_header_unlike_the_recipients_is_refused(resend_api):
    email = message(headers={"To": "someone-else@example.com"})

    with pytest.raises(ValueError, match="To header"):
        email.send(using="resend")
    assert resend_api.requests == []


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Hi\r\nBcc: victim@example.com"},
        {"headers": {"X-Note": "a\nBcc: victim@example.com"}},
        {"headers": {"Reply-To": "a@example.com\r\nBcc: victim@example.com"}},
    ],
)
def test_line_breaks_in_headers_are_refused(resend_api, changes):
    email = message(**changes)

    with pytest.raises(ValueError, match="newlines"):
        email.send(using="resend")
    assert resend_api.requests == []


def test_the_idempotency_key_makes_a_repeat_deliver_once(resend_api):
    for _ in range(2):
        email = message()
        email.idempotency_key = "order-1-placed"
        assert email.send(using="resend") == 1

    assert [r.headers.get("idempotency-key") for r in resend_api.requests] == [
        "order-1-placed",
        "order-1-placed",
    ]
    assert len(resend_api.delivered) == 1


def test_the_count_is_of_messages_sent(resend_api):
    backend = mail.mailers["resend"]

    sent = backend.send_messages([message(), message(to=[]), message(to=["b@example.com"])])

    assert sent == 2
    assert [r.body["to"] for r in resend_api.requests] == [["ada@example.com"], ["b@example.com"]]
    assert backend.send_messages([]) == 0


def test_an_error_raises_and_names_resends_answer(resend_api):
    resend_api.fail_next(422, "validation_error", "The `to` field is invalid.")

    with pytest.raises(resend.exceptions.ResendError) as raised:
        message().send(using="resend")

    assert raised.value.code == 422
    assert "to` field is invalid" in str(raised.value)
    assert API_KEY not in str(raised.value)


def test_fail_silently_counts_the_failure_as_not_sent_and_logs_no_key(resend_api, settings, caplog):
    settings.MAILERS["resend"]["OPTIONS"]["fail_silently"] = True
    resend_api.fail_next(500, "application_error", "Resend is down.")
    backend = mail.mailers["resend"]

    with caplog.at_level(logging.WARNING, logger="nordkestrel.mail"):
        sent = backend.send_messages([message(), message(to=["b@example.com"])])

    assert sent == 1
    assert len(resend_api.delivered) == 1
    assert "Resend is down." in caplog.text
    assert "500" in caplog.text
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(backend)


def test_a_wrong_key_is_refused_by_the_server(resend_api, settings):
    settings.MAILERS["resend"]["OPTIONS"]["api_key"] = "re_wrong"

    with pytest.raises(resend.exceptions.ResendError) as raised:
        message().send(using="resend")

    assert raised.value.code == 403
    assert resend_api.delivered == []


def test_a_mailer_needs_a_key_and_known_options(settings):
    backend = "nordkestrel.mail.ResendEmailBackend"
    settings.MAILERS = {
        "keyless": {"BACKEND": backend, "OPTIONS": {"api_key": ""}},
        "unknown": {"BACKEND": backend, "OPTIONS": {"api_key": "re_x", "host": "smtp"}},
    }

    with pytest.raises(InvalidMailer, match="api_key"):
        mail.mailers["keyless"]
    with pytest.raises(InvalidMailer, match="host"):
        mail.mailers["unknown"]


def test_sending_uses_no_deprecated_email_api(resend_api):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", PendingDeprecationWarning)
        email = message()
        email.attach_alternative("<p>Hi</p>", "text/html")
        assert email.send(using="resend") == 1


def test_tests_send_to_the_memory_outbox():
    """Every configured mailer is Django's memory backend under test: nothing leaves."""
    assert set(mail.mailers) == {"default"}
    assert type(mail.mailers.default).__module__ == "django.core.mail.backends.locmem"

    message().send()

    assert [m.subject for m in mail.outbox] == ["Your table"]


def _default_mailer(env):
    code = (
        "import django, json; django.setup(); from django.core import mail; "
        "backend = mail.mailers.default; "
        "print(json.dumps([type(backend).__module__ + '.' + type(backend).__name__, "
        "getattr(backend, 'api_url', None)]))"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::DeprecationWarning",
            "-W",
            "error::PendingDeprecationWarning",
            "-c",
            code,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def development_env(**overrides):
    env = production_env(
        DJANGO_ENV="development", RESEND_API_KEY=None, RESEND_API_URL=None, ALLOWED_HOSTS=None
    )
    env.update(overrides)
    return env


def test_development_without_a_key_prints_to_the_console():
    assert _default_mailer(development_env()) == [
        "django.core.mail.backends.console.EmailBackend",
        None,
    ]


def test_a_key_sends_through_resend_at_the_configured_url():
    env = development_env(RESEND_API_KEY="re_dev", RESEND_API_URL="http://127.0.0.1:9/")
    assert _default_mailer(env) == [
        "nordkestrel.mail.ResendEmailBackend",
        "http://127.0.0.1:9",
    ]


def test_production_sends_through_resend():
    assert _default_mailer(production_env(RESEND_API_URL=None)) == [
        "nordkestrel.mail.ResendEmailBackend",
        "https://api.resend.com",
    ]
