"""Facts about the current request that code deep below the view may need (logs, audit)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestMeta:
    request_id: str
    ip: str | None
    user_agent: str


# Set by RequestLogMiddleware for the duration of a request; None outside requests.
request_meta_var: ContextVar[RequestMeta | None] = ContextVar("request_meta", default=None)


def current_request_meta() -> RequestMeta | None:
    return request_meta_var.get()
