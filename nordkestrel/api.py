"""The API root and the one error shape every API error takes."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from django.urls import reverse
from django_ratelimit.exceptions import Ratelimited
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from nordkestrel.errors import ERROR_TYPES, DomainError, error_body, error_item
from nordkestrel.outage import log_unavailable, unavailable
from nordkestrel.ratelimit import retry_after

logger = logging.getLogger(__name__)


def error_leaves(detail: Any, path: tuple[str, ...] = ()) -> list[tuple[str | None, Any]]:
    """Every leaf of a DRF validation error, with its field path (``items.0.price``)."""
    if isinstance(detail, dict):
        return [
            leaf
            for key, value in detail.items()
            for leaf in error_leaves(
                value, path + (() if key in ("non_field_errors", "__all__") else (str(key),))
            )
        ]
    if isinstance(detail, list) and detail:
        return [
            leaf
            for index, value in enumerate(detail)
            # Nested list serializers mark valid rows with an empty dict.
            if value
            for leaf in error_leaves(
                value, path + ((str(index),) if isinstance(value, (dict, list)) else ())
            )
        ]
    return [((".".join(path) or None), detail)]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    # Errors are JSON whatever the view renders otherwise (the schema's YAML, the docs page).
    request = context.get("request")
    if request is not None:
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    headers: dict[str, str] = {}
    if isinstance(exc, RequestDataTooBig):
        set_rollback()
        return Response(
            error_body(413, "payload_too_large", "The request body is too large."), status=413
        )
    if isinstance(exc, SuspiciousOperation):
        set_rollback()
        return Response(error_body(400, "bad_request", "The request was refused."), status=400)
    if isinstance(exc, Ratelimited):
        headers["Retry-After"] = str(retry_after(exc))
        body = error_body(429, "rate_limited", "Too many requests. Try again later.")
        set_rollback()
        return Response(body, status=429, headers=headers)
    if isinstance(exc, DomainError):
        if exc.retry_after:
            headers["Retry-After"] = str(exc.retry_after)
        set_rollback()
        return Response(exc.body(), status=exc.status, headers=headers)
    if (answer := unavailable(exc)) is not None:
        # Another transaction got in the way, the database is down, silent or too slow, or
        # another dependency is down: no fault of the request, nothing of it written.
        log_unavailable(context.get("request"), exc, answer)
        set_rollback()
        return Response(
            error_body(answer.status, answer.code, answer.detail),
            status=answer.status,
            headers=answer.headers,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if not isinstance(exc, exceptions.APIException):
        # Anything unexpected: logged with its traceback, answered without internals.
        logger.exception("Unhandled API error", exc_info=exc)
        set_rollback()
        return Response(
            error_body(500, "server_error", "An unexpected error occurred."), status=500
        )

    # APIView.handle_exception sets auth_header (or turns the 401 into a 403 when no
    # authenticator can ask for credentials).
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if (wait := getattr(exc, "wait", None)) is not None:
        headers["Retry-After"] = str(int(wait) + 1)

    status = exc.status_code
    if isinstance(exc, exceptions.ValidationError):
        errors = [
            error_item(str(getattr(leaf, "code", None) or "invalid"), str(leaf), attr)
            for attr, leaf in error_leaves(exc.detail) or [(None, exc.detail)]
        ]
        first = errors[0]
        body = error_body(
            status,
            str(first["code"]),
            str(first["detail"]),
            first["attr"],
            type_="validation_error",
            errors=errors,
        )
    else:
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        body = error_body(status, str(code), str(detail))
        body["type"] = ERROR_TYPES.get(status, "invalid_request")
    set_rollback()
    return Response(body, status=status, headers=headers)


class ApiRootView(APIView):
    """Where the API starts: its version and where its schema and docs are."""

    permission_classes = [AllowAny]

    @extend_schema(
        responses=inline_serializer(
            "ApiRoot",
            {
                "name": serializers.CharField(),
                "version": serializers.CharField(),
                "schema": serializers.URLField(),
                "docs": serializers.URLField(),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "name": "Nordkestrel API",
                "version": "v1",
                "schema": request.build_absolute_uri(reverse("api-schema")),
                "docs": request.build_absolute_uri(reverse("api-docs")),
            }
        )
