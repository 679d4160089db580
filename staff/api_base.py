"""The base every tenant API view inherits; it owns authentication, scoping and lookup.

A subclass declares ``scopes`` (HTTP method → :class:`~staff.roles.Scope`) for every handler
it defines, or the class fails at import. It may not override the hooks the base owns
(``sealed_hooks``: ``get_queryset``, ``get_object``, ``get_permissions``, ``initial``,
``dispatch``, ...); it narrows the queryset with ``scope_queryset`` instead, so another
restaurant's object is a 404, like a missing one. It reads a body with ``self.parse``, which
refuses unknown fields.

Authentication, the scope check, the read-only check while the restaurant is pending deletion
and the request's transaction are the chain in staff/access.py, shared with the dashboard;
this module turns its refusals into the API's error bodies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, models
from django.http import Http404, HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from nordkestrel.serializers import StrictParsing
from staff.access import (
    AccessChecked,
    CredentialRefused,
    FrontDoor,
    admit,
    authorize,
    credentials,
)
from staff.auth import Actor
from tenants.context import tenant_context

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from tenants.models import Restaurant


REQUIRED_SCOPE_HEADER = "Nordkestrel-Required-Scope"


class AuthenticationRefused(exceptions.AuthenticationFailed):
    """401 with the verifier's own code (expired token, wrong issuer, ...)."""


class AccessRefused(exceptions.PermissionDenied):
    """403 with the chain's code (pending session, no organization, not on the roster)."""


class AccessAuthentication(BaseAuthentication):
    """Whichever registered credential the request carries for the API (staff/access.py):
    today the Clerk session in ``Authorization: Bearer``; the ``__session`` cookie is not
    read here."""

    def authenticate(self, request: Request) -> tuple[Actor, None] | None:
        django_request: HttpRequest = request._request
        try:
            actor = admit(django_request, FrontDoor.API, django_request.tenant_scope)  # type: ignore[attr-defined]
        except CredentialRefused as refused:
            if refused.status == 401:
                raise AuthenticationRefused(refused.detail, refused.code) from None
            raise AccessRefused(refused.detail, refused.code) from None
        if actor is None:
            return None
        return actor, None

    def authenticate_header(self, request: Request) -> str:
        schemes = dict.fromkeys(credential.challenge for credential in credentials(FrontDoor.API))
        return ", ".join(f'{scheme} realm="api"' for scheme in schemes)


class AccessAuthenticationScheme(OpenApiAuthenticationExtension):
    """The security schemes of the credentials the API accepts (any one of them will do)."""

    target_class = AccessAuthentication

    def __init__(self, target: Any) -> None:
        super().__init__(target)
        accepted = [c for c in credentials(FrontDoor.API) if c.openapi_name]
        self.definitions = [dict(credential.openapi_scheme) for credential in accepted]
        names = [credential.openapi_name for credential in accepted]
        self.name = names[0] if len(names) == 1 else names

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        names = [self.name] if isinstance(self.name, str) else self.name
        return [{name: []} for name in names]

    def get_security_definition(self, auto_schema: Any) -> Any:
        return self.definitions[0] if isinstance(self.name, str) else self.definitions


class HasDeclaredScope(BasePermission):
    """An admitted actor, the scope the view declares for the method, and the read-only
    check while the restaurant is pending deletion (staff.access.authorize)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        actor = request.user
        if not isinstance(actor, Actor):
            raise exceptions.NotAuthenticated()
        authorize(actor, view, request.method or "")
        return True


class TenantCursorPagination(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = "-id"

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        """A cursor whose position is not a value of the ordering field (forged or garbled)
        answers 404 like any unknown cursor, never a 500."""
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError, DjangoValidationError, DataError):
            raise exceptions.NotFound(self.invalid_cursor_message) from None


class TenantAPIView(StrictParsing, AccessChecked, GenericAPIView):
    front_door = FrontDoor.API
    sealed_hooks = (
        "get_queryset",
        "get_object",
        "get_permissions",
        "get_authenticators",
        "perform_authentication",
        "check_permissions",
        "initial",
        "dispatch",
        "handle_exception",
        "finalize_response",
    )
    abstract = True
    authentication_classes = [AccessAuthentication]
    permission_classes = [HasDeclaredScope]
    pagination_class = TenantCursorPagination
    model: ClassVar[type[models.Model] | None] = None

    @property
    def actor(self) -> Actor:
        actor = self.request.user
        if not isinstance(actor, Actor):
            raise exceptions.NotAuthenticated()
        return actor

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        with self.request_transaction(request):
            response = super().dispatch(request, *args, **kwargs)
            self.keep_writes(response.status_code)
            return response

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Authentication and the permission check (DRF runs them here) admit and authorize.
        with self.access_transaction(request._request):
            super().initial(request, *args, **kwargs)

    def handle_exception(self, exc: Exception) -> Response:
        """A refusal for a missing scope names the scope (``Nordkestrel-Required-Scope``)."""
        response = super().handle_exception(exc)
        if required := getattr(exc, "required_scope", None):
            response[REQUIRED_SCOPE_HEADER] = required
        return response

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        """Every answer to a key-authenticated request carries its rate limit (RateLimit-*),
        the 429 included."""
        response = super().finalize_response(request, response, *args, **kwargs)
        quota = getattr(request._request, "api_key_quota", None)
        if quota is not None:
            for name, value in quota.headers().items():
                response[name] = value
        return response

    def tenant(self) -> AbstractContextManager[Restaurant]:
        """The actor's restaurant as the tenant, for one step of a non-atomic handler (in an
        atomic request the context is already set; this nests inside it)."""
        return tenant_context(self.actor.restaurant)

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [AccessAuthentication()]

    def get_permissions(self) -> list[BasePermission]:
        return [HasDeclaredScope()]

    def scope_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        """Narrow the restaurant's rows for this view (filters, select_related)."""
        return queryset

    def get_queryset(self) -> models.QuerySet:
        if self.model is None:
            raise TypeError(f"{type(self).__name__} has no model")
        # The default manager is the tenant-scoped one: only this restaurant's rows.
        return self.scope_queryset(self.model._default_manager.all())

    def get_object(self) -> Any:
        lookup = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
        try:
            return self.get_queryset().get(**{self.lookup_field: int(lookup)})
        except (ValueError, TypeError, self.model.DoesNotExist):  # type: ignore[union-attr]
            raise Http404 from None

    def paginated(self, queryset: models.QuerySet, serializer_class: Any) -> Response:
        page = self.paginate_queryset(queryset) or []
        return self.get_paginated_response(serializer_class(page, many=True).data)
