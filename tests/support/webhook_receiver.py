"""A webhook receiver on loopback, as an integrator would run one: it verifies every request's
signature with the ``standardwebhooks`` package and records what came, and it can be told how
to answer (a status, a Retry-After, a body, or no answer at all)."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    raw: bytes
    verified: dict[str, Any] | None  # the parsed body when a secret given verifies it
    at: float  # time.monotonic() when it arrived

    @property
    def body(self) -> Any:
        return json.loads(self.raw)

    @property
    def signatures(self) -> list[str]:
        return self.headers.get("webhook-signature", "").split(" ")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait before answering (longer than the sender's timeout: no answer). The
    # wait ends early when the sender hangs up.
    delay: float = 0.0
    # Close the connection without answering at all.
    drop: bool = False


@dataclass
class Receiver:
    # Secrets the signature is checked against; any one verifying counts.
    secrets: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    replies: deque[Reply] = field(default_factory=deque)
    default: Reply = field(default_factory=Reply)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _release: threading.Event = field(default_factory=threading.Event)
    # Requests read and not yet answered (or given up by the sender), and the most at once.
    in_flight: int = 0
    peak: int = 0
    # With a server-side TLS context: https.
    tls: ssl.SSLContext | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/hooks"

    def answer(self, *replies: Reply) -> None:
        """The next requests get these replies, in order; then the default."""
        with self._lock:
            self.replies.extend(replies)

    def verify(self, request: Received, secret: str) -> dict[str, Any]:
        return Webhook(secret).verify(request.raw, request.headers)

    def _next_reply(self) -> Reply:
        with self._lock:
            return self.replies.popleft() if self.replies else self.default

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = None
                for secret in receiver.secrets:
                    try:
                        verified = Webhook(secret).verify(raw, headers)
                        break
                    except WebhookVerificationError:
                        continue
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, headers, raw, verified, time.monotonic())
                    )
                    receiver.in_flight += 1
                    receiver.peak = max(receiver.peak, receiver.in_flight)
                try:
                    self._answer(receiver._next_reply())
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1

            def _answer(self, reply: Reply) -> None:
                if reply.drop:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply.delay:
                    self._wait(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(reply.body)

            def _wait(self, seconds: float) -> None:
                """Up to ``seconds``, until the receiver stops or the sender hangs up."""
                deadline = time.monotonic() + seconds
                while not receiver._release.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    readable, _, _ = select.select([self.connection], [], [], min(left, 0.1))
                    if readable:
                        try:
                            if not self.connection.recv(1, socket.MSG_PEEK):
                                return  # the sender closed its side: it gave up
                        except (OSError, ValueError):
                            return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
