"""Email through Resend's API: a backend for Django 6.1's ``MAILERS``.

Configure it as a mailer::

    MAILERS = {"default": {"BACKEND": "nordkestrel.mail.ResendEmailBackend",
                           "OPTIONS": {"api_key": "re_...", "api_url": ""}}}

``api_url`` (optional) sends to another Resend-compatible endpoint; ``fail_silently`` (optional)
counts a refused message as not sent instead of raising. A message that carries an
``idempotency_key`` attribute is sent with that ``Idempotency-Key``: Resend then delivers it
once, however often a retried job sends it again (within Resend's 24 hours).
"""

from __future__ import annotations

import base64
import email.message
import logging
import mimetypes
import sys
from collections.abc import Sequence
from typing import Any, cast

from django.core.mail import DEFAULT_ATTACHMENT_MIME_TYPE, EmailMessage, InvalidMailer
from django.core.mail.backends.base import BaseEmailBackend

# ``resend`` is imported where a message is sent, never at module level: the SDK (and the
# requests stack under it) costs megabytes of memory in every process that imports this module
# (the task modules do, for describe_error), and a web worker rarely sends an email itself
# (tests/test_lazy_imports.py checks).

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.resend.com"
# Set this attribute on an EmailMessage to send it at most once.
IDEMPOTENCY_ATTRIBUTE = "idempotency_key"


class ResendEmailBackend(BaseEmailBackend):
    """Sends each message with one ``POST /emails`` through the ``resend`` SDK."""

    alias: str | None  # set by BaseEmailBackend (Django 6.1), missing from django-stubs

    def __init__(
        self, *, api_key: str = "", api_url: str = "", fail_silently: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not api_key:
            raise InvalidMailer("OPTIONS must define 'api_key'.", alias=self.alias)
        self._api_key = api_key
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.fail_silently = fail_silently

    def __repr__(self) -> str:
        # Never the key: a repr ends up in logs and tracebacks.
        return f"<ResendEmailBackend alias={self.alias!r} api_url={self.api_url!r}>"

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            try:
                self._send(message)
            except Exception as error:
                if not self.fail_silently:
                    raise
                logger.warning("Resend did not take an email: %s", describe_error(error))
            else:
                sent += 1
        return sent

    def _send(self, message: EmailMessage) -> None:
        import resend

        params = resend_params(message)
        key = getattr(message, IDEMPOTENCY_ATTRIBUTE, None)
        options = cast(resend.Emails.SendOptions, {"idempotency_key": key}) if key else None
        # The SDK reads its configuration from module globals at request time; every mailer in
        # a process has the same, so setting them before each send is safe across threads.
        resend.api_key = self._api_key
        resend.api_url = self.api_url
        resend.Emails.send(cast(resend.Emails.SendParams, params), options)


def describe_error(error: Exception) -> str:
    """What went wrong, for a log line: Resend's status, error name and message (no secrets;
    the key travels only in a request header)."""
    sdk = sys.modules.get("resend")  # never imported: the error cannot be one of its own
    if sdk is not None and isinstance(error, sdk.exceptions.ResendError):
        return f"{error.code} {error.error_type}: {error.message}"
    return f"{type(error).__name__}: {error}"


def resend_params(message: EmailMessage) -> dict[str, Any]:
    """The body of ``POST /emails`` for a Django message."""
    params: dict[str, Any] = {
        "from": str(message.from_email),
        "to": [str(address) for address in message.to],
        "subject": str(message.subject),
    }
    for field in ("cc", "bcc", "reply_to"):
        addresses = [str(address) for address in getattr(message, field)]
        if addresses:
            params[field] = addresses
    if message.body:
        params["html" if message.content_subtype == "html" else "text"] = str(message.body)
    for content, mimetype in getattr(message, "alternatives", []):
        if mimetype != "text/html" or "html" in params:
            raise ValueError(f"Resend takes one text and one HTML body, not {mimetype}.")
        params["html"] = content.decode() if isinstance(content, bytes) else str(content)
    headers: dict[str, str] = {}
    for name, value in message.extra_headers.items():
        field_name = name.lower()
        if field_name == "from":
            params["from"] = str(value)
        elif field_name == "reply-to":
            params["reply_to"] = str(value)
        elif field_name in {"to", "cc"}:
            # SMTP can show one address and deliver to another; Resend's API cannot.
            raise ValueError(f"Resend cannot send with a {name} header unlike its recipients.")
        else:
            headers[name] = str(value)
    if headers:
        params["headers"] = headers
    if message.attachments:
        params["attachments"] = [_attachment(item) for item in message.attachments]
    _refuse_header_injection(params)
    return params


def _refuse_header_injection(params: dict[str, Any]) -> None:
    """A line break in a header-like field could add headers (e.g. a Bcc); Django's SMTP
    path refuses it, and so does this one."""
    values: list[tuple[str, str]] = []
    for field in ("from", "subject", "to", "cc", "bcc", "reply_to"):
        value = params.get(field)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                values.append((field, item))
    values += [(name, name) for name in params.get("headers", {})]
    values += [(name, value) for name, value in params.get("headers", {}).items()]
    for field, value in values:
        if "\r" in value or "\n" in value:
            raise ValueError(f"Header values can't contain newlines ({field}).")


def _attachment(item: Any) -> dict[str, str]:
    if isinstance(item, email.message.Message):
        payload = item.get_payload(decode=True)
        filename = item.get_filename() or "attachment"
        content_type = item.get_content_type()
        content_id = str(item.get("Content-ID", "")).strip().strip("<>")
    else:
        filename, content, content_type = item
        payload = content.encode() if isinstance(content, str) else content
        content_type = (
            content_type or mimetypes.guess_type(filename)[0] or DEFAULT_ATTACHMENT_MIME_TYPE
        )
        content_id = ""
    if not isinstance(payload, bytes):
        raise ValueError(f"Attachment {filename!r} has no content Resend can send.")
    attachment = {
        "filename": filename,
        "content": base64.b64encode(payload).decode("ascii"),
        "content_type": content_type,
    }
    if content_id:
        attachment["content_id"] = content_id
    return attachment
