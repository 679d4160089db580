"""A stand-in for Resend's email API on loopback, for tests that send through the real SDK.

It answers ``POST /emails`` (and ``/emails/batch``) in Resend's shapes, checks the bearer key,
keeps Resend's idempotency rule (a key seen before with the same body answers the first id
and delivers nothing new; with another body, 409), records every request, and can be told to
fail the next one.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import resend

API_KEY = "re_test_0123456789abcdef"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any


@dataclass
class _Failure:
    status: int
    name: str
    message: str


@dataclass
class ResendStandIn:
    api_key: str = API_KEY
    requests: list[Recorded] = field(default_factory=list)
    # What Resend would deliver: one body per accepted, not deduplicated email.
    delivered: list[dict[str, Any]] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _idempotent: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def mailers(self, alias: str = "default") -> dict[str, dict[str, Any]]:
        """A MAILERS setting that sends through this server."""
        return {
            alias: {
                "BACKEND": "nordkestrel.mail.ResendEmailBackend",
                "OPTIONS": {"api_key": self.api_key, "api_url": self.url},
            }
        }

    def fail_next(
        self, status: int, name: str = "application_error", message: str = "Something broke."
    ) -> None:
        with self._lock:
            self._failures.append(_Failure(status, name, message))

    @property
    def emails(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/emails"]

    def __enter__(self) -> ResendStandIn:
        self._saved = (resend.api_key, resend.api_url)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        # The backend sets the SDK's globals; leave them as they were.
        resend.api_key, resend.api_url = self._saved

    def _answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple:
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = raw.decode(errors="replace")
        with self._lock:
            self.requests.append(Recorded(method, path, headers, body))
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return _error(failure.status, failure.name, failure.message)
        authorization = headers.get("authorization", "")
        if not authorization.startswith("Bearer ") or not authorization[7:]:
            return _error(401, "missing_api_key", "Missing API key in the authorization header.")
        if authorization != f"Bearer {self.api_key}":
            return _error(403, "invalid_api_key", "API key is invalid")
        if method != "POST" or path not in ("/emails", "/emails/batch"):
            return _error(404, "not_found", "The requested endpoint does not exist.")
        emails = body if path == "/emails/batch" else [body]
        if not isinstance(emails, list) or not all(_valid(email) for email in emails):
            return _error(422, "validation_error", "Missing `from`, `to`, `subject` or a body.")
        key = headers.get("idempotency-key")
        with self._lock:
            if key and key in self._idempotent:
                first_body, first_answer = self._idempotent[key]
                if first_body != body:
                    return _error(
                        409,
                        "invalid_idempotent_request",
                        "Same idempotency key used with a different request payload.",
                    )
                return 200, first_answer
            ids = [str(uuid.uuid4()) for _ in emails]
            self.delivered.extend(emails)
            answer = (
                {"data": [{"id": i} for i in ids]} if path == "/emails/batch" else {"id": ids[0]}
            )
            if key:
                self._idempotent[key] = (body, answer)
        return 200, answer


def _valid(email: Any) -> bool:
    return (
        isinstance(email, dict)
        and bool(email.get("from"))
        and bool(email.get("to"))
        and bool(email.get("subject"))
        and bool(email.get("html") or email.get("text"))
    )


def _error(status: int, name: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"statusCode": status, "name": name, "message": message}


def _handler(stand_in: ResendStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, answer = stand_in._answer(self.command, self.path, headers, raw)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_GET = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test's assertions say what happened

    return Handler
