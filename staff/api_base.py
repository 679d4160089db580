"""The base every tenant API view inherits; it owns authentication, scoping and lookup.

A subclass declares ``scopes`` (HTTP method → scope) for every handler it defines, or the
class fails at import. It may not override ``get_queryset``, ``get_object``,
``get_permissions`` or ``get_authenticators``; it narrows the queryset with
``scope_queryset`` instead. Another restaurant's object is therefore a 404, like a missing one.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, models, transaction
from django.http import Http404, HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from nordkestrel.errors import PermissionDeniedError
from nordkestrel.ratelimit import auth_failures
from staff.auth import Actor, authenticate_token
from staff.clerk import TokenRejected
from tenants.context import TenantScope, tenant_context, tenant_scope
from tenants.deletion import RestaurantClosing, is_closing

if TYPE_CHECKING:
    from tenants.models import Restaurant

HANDLERS = ("get", "post", "put", "patch", "delete")
SEALED = ("get_queryset", "get_object", "get_permissions", "get_authenticators", "dispatch")


class AuthenticationRefused(exceptions.AuthenticationFailed):
    """401 with the verifier's own code (expired token, wrong issuer, ...)."""


class AccessRefused(exceptions.PermissionDenied):
    """403 with the chain's code (pending session, no organization, not on the roster)."""


class ClerkBearerAuthentication(BaseAuthentication):
    """``Authorization: Bearer <Clerk session token>``; the ``__session`` cookie is not read."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Actor, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        keyword, _, token = header.partition(" ")
        if keyword != self.keyword or not token.strip():
            auth_failures.record(request._request)
            raise AuthenticationRefused("Use 'Authorization: Bearer <token>'.", "invalid_header")
        scope: TenantScope = request._request.tenant_scope  # type: ignore[attr-defined]
        auth_failures.check(request._request)
        try:
            actor = authenticate_token(token.strip(), scope)
        except TokenRejected as rejected:
            auth_failures.record(request._request)
            if rejected.status == 401:
                raise AuthenticationRefused(rejected.detail, rejected.code) from None
            raise AccessRefused(rejected.detail, rejected.code) from None
        request._request.restaurant = actor.restaurant  # type: ignore[attr-defined]
        return actor, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class ClerkBearerScheme(OpenApiAuthenticationExtension):
    target_class = ClerkBearerAuthentication
    name = "ClerkSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A Clerk session token of a member of the restaurant's organization.",
        }


class HasDeclaredScope(BasePermission):
    """An authenticated actor whose role grants the scope the view declares for the method."""

    def has_permission(self, request: Request, view: Any) -> bool:
        actor = request.user
        if not isinstance(actor, Actor):
            raise exceptions.NotAuthenticated()
        method = (request.method or "").lower()
        if method == "options":
            # What the view accepts is told to a member who may use any of its methods.
            if not any(actor.has(scope) for scope in view.scopes.values()):
                raise PermissionDeniedError("Your role does not allow this.")
            return True
        scope = view.scopes.get("get" if method == "head" else method)
        if scope is None:
            # A method the view does not answer is DRF's 405 (no handler runs); one it answers
            # without a declared scope is refused.
            return not hasattr(view, method)
        actor.require(scope)
        # A restaurant pending deletion is read-only, except what its view allows (exports,
        # cancelling the deletion).
        if (
            request.method not in SAFE_METHODS
            and is_closing(actor.restaurant)
            and not getattr(view, "allowed_while_closing", False)
        ):
            raise RestaurantClosing(actor.restaurant)
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


class TenantAPIView(GenericAPIView):
    authentication_classes = [ClerkBearerAuthentication]
    permission_classes = [HasDeclaredScope]
    pagination_class = TenantCursorPagination
    model: ClassVar[type[models.Model] | None] = None
    scopes: ClassVar[dict[str, str]] = {}
    abstract: ClassVar[bool] = True
    # Whether the view's writes still run while the restaurant is pending deletion (only
    # exports and the deletion's own cancel); every other write answers 409.
    allowed_while_closing: ClassVar[bool] = False
    # Whether the request is one transaction (an error answer then keeps none of its writes).
    # A view whose service must commit a step before it calls Stripe (a refund is reserved,
    # then asked for, then recorded) sets False: authentication and the scope check commit
    # in a short transaction of their own, and the handler runs in none, entering
    # ``self.tenant()`` for each step it takes itself; the service commits its own steps.
    atomic_request: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in SEALED:
            if name in cls.__dict__:
                raise TypeError(f"{cls.__name__} may not override {name}.")
        if cls.__dict__.get("abstract", False):
            return
        handlers = [method for method in HANDLERS if hasattr(cls, method)]
        missing = [method for method in handlers if method not in cls.scopes]
        if not cls.scopes or missing:
            raise TypeError(
                f"{cls.__name__} must declare the scope for each handler: missing {missing}."
            )

    @property
    def actor(self) -> Actor:
        actor = self.request.user
        if not isinstance(actor, Actor):
            raise exceptions.NotAuthenticated()
        return actor

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not self.atomic_request:
            return super().dispatch(request, *args, **kwargs)
        with tenant_scope() as scope:
            request.tenant_scope = scope  # type: ignore[attr-defined]
            response = super().dispatch(request, *args, **kwargs)
            if response.status_code >= 400:
                # Nothing half-written: an error answer keeps none of the request's writes.
                transaction.set_rollback(True)
            return response

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if self.atomic_request:
            super().initial(request, *args, **kwargs)
            return
        with tenant_scope() as scope:
            request._request.tenant_scope = scope  # type: ignore[attr-defined]
            super().initial(request, *args, **kwargs)

    def tenant(self) -> AbstractContextManager[Restaurant]:
        """The actor's restaurant as the tenant, for one step of a non-atomic handler (in an
        atomic request the context is already set; this nests inside it)."""
        return tenant_context(self.actor.restaurant)

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [ClerkBearerAuthentication()]

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
