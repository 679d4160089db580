"""One error body for the whole API: ``{"type", "code", "detail", "attr"}``, and on a 400
``errors`` too: every problem found, each ``{"code", "detail", "attr"}`` (the first is the
body's own ``code``, ``detail`` and ``attr``).

API paths answer in that JSON shape whatever raised the error (DRF, Django's URL resolver,
the rate limiter, an unhandled exception); pages answer with a small HTML page.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

API_PREFIX = "/api/"

# HTTP status → the error ``type`` used when nothing more specific is known.
ERROR_TYPES = {
    400: "invalid_request",
    401: "authentication_error",
    403: "permission_denied",
    404: "not_found",
    405: "invalid_request",
    406: "invalid_request",
    409: "conflict",
    413: "invalid_request",
    415: "invalid_request",
    429: "rate_limited",
    500: "server_error",
    503: "unavailable",
}


def _sendable(text: str | None) -> str | None:
    """Text that encodes as UTF-8: an ``attr`` or ``detail`` may echo input (an unknown
    field's name) holding a lone surrogate, which would fail the response itself (a 500)."""
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_item(code: str, detail: str, attr: str | None = None) -> dict[str, str | None]:
    """One problem of a 400: which check failed, for people, and the field at fault."""
    return {"code": code, "detail": _sendable(detail), "attr": _sendable(attr)}


def error_body(
    status: int,
    code: str,
    detail: str,
    attr: str | None = None,
    type_: str | None = None,
    *,
    errors: list[dict[str, str | None]] | None = None,
) -> dict[str, Any]:
    """The error body; a 400 lists its problems in ``errors`` (by default the one above)."""
    body: dict[str, Any] = {
        "type": type_ or ERROR_TYPES.get(status, "invalid_request"),
        **error_item(code, detail, attr),
    }
    if status == 400:
        body["errors"] = errors or [error_item(code, detail, attr)]
    return body


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def error_response(
    request: HttpRequest,
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """The error response for ``request``: JSON on API paths, an HTML page elsewhere."""
    if is_api_request(request):
        return JsonResponse(error_body(status, code, detail), status=status, headers=headers)
    html = render_to_string(
        "error.html", {"status": status, "code": code, "detail": detail}, request=request
    )
    return HttpResponse(html, status=status, headers=headers)


class DomainError(Exception):
    """An error a service raises for the caller to show: it carries its status and shape."""

    status = 400
    type_: str | None = None
    code = "invalid"
    # Seconds the client should wait before repeating the request (sent as Retry-After).
    retry_after: int | None = None

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        attr: str | None = None,
        errors: list[dict[str, str | None]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.attr = attr
        # A 400's every problem (``error_item``), when there is more than this one.
        self.errors = errors
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        type_ = self.type_ or ("validation_error" if self.status == 400 else None)
        return error_body(
            self.status, self.code, self.detail, self.attr, type_=type_, errors=self.errors
        )


class InvalidInput(DomainError):
    status = 400


class PermissionDeniedError(DomainError):
    status = 403
    code = "permission_denied"


class NotFoundError(DomainError):
    status = 404
    code = "not_found"


class ConflictError(DomainError):
    status = 409
    code = "conflict"
