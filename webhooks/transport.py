"""One webhook request: to an address already checked, with the real host name for TLS and the
Host header, within hard time limits, following no redirect, reading at most 2 KB back.

asyncio streams and h11 (the HTTP/1.1 state machine httpx is built on): the connection is
opened to the checked IP address itself, so no second DNS lookup can send it elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache

import h11
from django.conf import settings

from webhooks.addresses import Address, Target

CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 15.0
# How much of an answer is read (and kept in the delivery log).
MAX_ANSWER_BYTES = 2048
USER_AGENT = "Nordkestrel-Webhooks/1.0"


@dataclass(frozen=True)
class Answer:
    """What came back: a status, or the error that left none."""

    status: int | None
    body: str
    error: str
    duration_ms: int
    # Seconds asked for by a 429 or 503's Retry-After.
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@cache
def _tls_context(cafile: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if cafile:
        context.load_verify_locations(cafile=cafile)
    return context


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delay-seconds or an HTTP date), None if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit alone takes "²" and "٣"
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


async def _connect(
    target: Target, addresses: list[Address]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The first of ``addresses`` that accepts a connection within the connect timeout."""
    tls = _tls_context(settings.WEBHOOK_CA_FILE) if target.scheme == "https" else None
    deadline = time.monotonic() + CONNECT_TIMEOUT
    last: Exception | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(
                    str(address),
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls is not None else None,
                    ssl_handshake_timeout=remaining if tls is not None else None,
                ),
                remaining,
            )
        except (OSError, TimeoutError) as error:
            last = error
    if isinstance(last, OSError) and not isinstance(last, TimeoutError):
        raise last
    raise TimeoutError(f"no connection within {CONNECT_TIMEOUT:g} s")


async def _exchange(
    target: Target, addresses: list[Address], headers: list[tuple[str, str]], body: bytes
) -> tuple[int, bytes, dict[str, str]]:
    reader, writer = await _connect(target, addresses)
    try:
        connection = h11.Connection(h11.CLIENT)
        request = h11.Request(
            method="POST",
            target=target.path,
            headers=[
                ("Host", target.host_header),
                ("User-Agent", USER_AGENT),
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
                *headers,
            ],
        )
        writer.write(
            connection.send(request)
            + connection.send(h11.Data(data=body))
            + connection.send(h11.EndOfMessage())
        )
        await writer.drain()
        status, answer, answer_headers = 0, bytearray(), {}
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(4096))
            elif isinstance(event, h11.Response):
                status = event.status_code
                answer_headers = {
                    name.decode("latin-1").lower(): value.decode("latin-1")
                    for name, value in event.headers
                }
            elif isinstance(event, h11.Data):
                answer += event.data
                if len(answer) >= MAX_ANSWER_BYTES:
                    break
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        return status, bytes(answer[:MAX_ANSWER_BYTES]), answer_headers
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return str(error) or f"no answer within {TOTAL_TIMEOUT:g} s"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or error}"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, h11.RemoteProtocolError):
        return f"not a valid HTTP answer: {error}"
    if isinstance(error, OSError):
        return f"connection failed: {error.strerror or error}"
    return f"{type(error).__name__}: {error}"


async def post(
    target: Target, addresses: list[Address], headers: list[tuple[str, str]], body: bytes
) -> Answer:
    """POST ``body`` to ``target`` at one of ``addresses``; never raises for what the
    network or the receiver does."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(TOTAL_TIMEOUT):
            status, answer, answer_headers = await _exchange(target, addresses, headers, body)
    except (OSError, TimeoutError, h11.ProtocolError, ssl.SSLError) as error:
        elapsed = round((time.monotonic() - started) * 1000)
        return Answer(None, "", _describe(error)[:500], elapsed)
    elapsed = round((time.monotonic() - started) * 1000)
    waits = retry_after(answer_headers.get("retry-after")) if status in (429, 503) else None
    return Answer(status, answer.decode("utf-8", "replace"), "", elapsed, waits)
