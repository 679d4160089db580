"""The request chain both front doors share: credential → access → scope → read-only check.

A request reaches a tenant view through the API (``staff.api_base.TenantAPIView``) or the
dashboard (``dashboard.base.DashboardView``). Both run this chain, and only the way each
answers a refusal differs (a JSON error body; a redirect to sign in or an HTML page):

1. **Admission** (:func:`admit`): the first registered :class:`Credential` valid for this
   front door that recognises the request's credential turns it into the request's
   :class:`~staff.auth.Actor` (restaurant, staff member, role, scopes, second factor) and
   enters the restaurant in the request's tenant scope. Refusals count against the client's
   failed sign-ins (429 past the limit).
2. **Authorization** (:func:`authorize`): the scope the view declares for the method is
   required with ``actor.require`` (which also asks for a recent second factor when the
   scope is sensitive); while the restaurant is pending deletion, a write is refused unless
   the view allows it.
3. **The transaction** (:class:`AccessChecked`): an atomic view runs the whole request in one
   transaction in its restaurant's context; a non-atomic one runs steps 1-2 in a short
   transaction of its own and its handler in none.

A new way to authenticate (API keys, say) is a :class:`Credential` subclass decorated with
:func:`register`; no base view changes. The views' declarations are checked when each class
is created: every handler names an existing :class:`~staff.roles.Scope`, and the hooks the
base owns cannot be overridden.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from django.db import transaction
from django.http import HttpRequest

from nordkestrel.errors import PermissionDeniedError
from nordkestrel.ratelimit import auth_failures
from staff.auth import Actor
from staff.roles import Scope
from tenants.closing import RestaurantClosing, is_closing
from tenants.context import TenantScope, tenant_scope

HANDLERS = ("get", "post", "put", "patch", "delete")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class FrontDoor(enum.Enum):
    API = "api"
    DASHBOARD = "dashboard"


class CredentialRefused(Exception):
    """A credential this request carries and we refuse: 401 (malformed, bad, expired) or 403
    (valid, but not allowed in: no organization, not on the roster, suspended).

    ``detail`` goes into the answer, so it never repeats anything from the credential.
    """

    def __init__(self, code: str, detail: str, status: int = 401) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status


class Credential:
    """One way to prove who is acting. Subclass, then :func:`register` the subclass."""

    # Which front doors accept it: an API key is never a way into the dashboard.
    front_doors: ClassVar[frozenset[FrontDoor]] = frozenset()
    # Lower goes first: a class that claims a narrow form of credential (a token prefix)
    # comes before one that answers for every ``Authorization`` header.
    order: ClassVar[int] = 50
    # The API's ``WWW-Authenticate`` scheme, and its OpenAPI security scheme (name, object).
    challenge: ClassVar[str] = "Bearer"
    openapi_name: ClassVar[str] = ""
    openapi_scheme: ClassVar[dict[str, str]] = {}

    def read(self, request: HttpRequest, door: FrontDoor) -> str | None:
        """The credential this request carries for ``door`` if it is of this kind (None when
        it is not); a malformed one raises :class:`CredentialRefused`."""
        raise NotImplementedError

    def authenticate(self, credential: str, scope: TenantScope) -> Actor:
        """The actor ``credential`` proves, with its restaurant entered in ``scope``; raise
        :class:`CredentialRefused` otherwise."""
        raise NotImplementedError


_registry: list[type[Credential]] = []


def register(credential: type[Credential]) -> type[Credential]:
    """Add a credential class to the chain (a decorator); tried in ``order``, then in the
    order registered."""
    if not credential.front_doors:
        raise TypeError(f"{credential.__name__} must name the front doors it is valid for.")
    if credential not in _registry:
        _registry.append(credential)
        _registry.sort(key=lambda registered: registered.order)
    return credential


def unregister(credential: type[Credential]) -> None:
    if credential in _registry:
        _registry.remove(credential)


def credentials(door: FrontDoor) -> list[type[Credential]]:
    """The registered credential classes valid for ``door``, in the order they are tried."""
    return [credential for credential in _registry if door in credential.front_doors]


def admit(request: HttpRequest, door: FrontDoor, scope: TenantScope) -> Actor | None:
    """The request's actor, its restaurant entered in ``scope``; None when the request carries
    no credential this door accepts. Raises :class:`CredentialRefused`, or 429 when this
    client has failed too often."""
    for credential_class in credentials(door):
        credential = credential_class()
        try:
            presented = credential.read(request, door)
        except CredentialRefused:
            auth_failures.record(request)
            raise
        if presented is None:
            continue
        auth_failures.check(request)
        try:
            actor = credential.authenticate(presented, scope)
        except CredentialRefused:
            auth_failures.record(request)
            raise
        request.access = actor  # type: ignore[attr-defined]
        request.restaurant = actor.restaurant  # type: ignore[attr-defined]
        return actor
    return None


class NoDeclaredScope(PermissionDeniedError):
    """A handler the view declares no scope for: nobody may use it."""


def authorize(actor: Actor, view: AccessChecked, method: str) -> None:
    """Require the view's scope for ``method``, then refuse a write to a closing restaurant
    unless the view allows it.

    HEAD needs GET's scope. OPTIONS (what the view accepts, nothing of its data) is told to
    a member who may use any of the view's methods. A method the view has no handler for
    runs nothing of it: whoever may read the view (GET's scope, or any of its scopes where
    it has no GET) goes on to the 405 that names the allowed methods; anyone else is
    refused as for any other method."""
    method = method.lower()
    if method == "options":
        if not any(actor.has(scope) for scope in view.scopes.values()):
            raise PermissionDeniedError("Your role does not allow this.")
        return
    scope = view.scopes.get("get" if method == "head" else method)
    if scope is None:
        if method in HANDLERS and callable(getattr(view, method, None)):
            raise NoDeclaredScope("You do not have permission to perform this action.")
        reader = view.scopes.get("get")
        if reader is not None:
            actor.require(reader)
        elif not any(actor.has(declared) for declared in view.scopes.values()):
            raise PermissionDeniedError("Your role does not allow this.")
        return
    actor.require(scope)
    # A restaurant pending deletion is read-only, except what its view allows (exports,
    # cancelling the deletion).
    if (
        method.upper() not in SAFE_METHODS
        and is_closing(actor.restaurant)
        and not view.allowed_while_closing
    ):
        raise RestaurantClosing(actor.restaurant)


def declared_scopes(cls: type, scopes: Mapping[str, object]) -> None:
    """Every declared scope is a :class:`Scope`, for an HTTP method; else the class fails."""
    for method, scope in scopes.items():
        if method not in HANDLERS:
            raise TypeError(f"{cls.__name__}.scopes: {method!r} is not a handler method.")
        if not isinstance(scope, Scope):
            raise TypeError(
                f"{cls.__name__}.scopes[{method!r}]: {scope!r} is not a Scope; "
                "declare scopes with the enum (staff.roles.Scope)."
            )


# What both base views share: their declarations, checked at class creation, and the
# request's transaction. A base view names the hooks it owns in ``sealed_hooks``; its
# subclasses may not override them. (No docstring: the API schema would show it as the
# description of every operation whose view has none of its own.)
class AccessChecked:
    front_door: ClassVar[FrontDoor]
    sealed_hooks: ClassVar[tuple[str, ...]] = ()
    # HTTP method → the scope it needs; every handler must have one.
    scopes: ClassVar[Mapping[str, Scope]] = {}
    # Set on a base or intermediate class (in its own body): it needs no declared scope.
    abstract: ClassVar[bool] = False
    # Whether the view's writes still run while the restaurant is pending deletion (only
    # exports, the deletion's own page and cancel, switching restaurants); every other
    # write answers 409.
    allowed_while_closing: ClassVar[bool] = False
    # Whether the request is one transaction. A view whose service must commit a step
    # before it calls Stripe (a refund is reserved, then asked for, then recorded) sets
    # False: admission and the scope check commit in a short transaction of their own, and
    # the handler runs in none, entering ``tenant_context(self.actor.restaurant)`` for each
    # step it takes itself; the service commits its own steps.
    atomic_request: ClassVar[bool] = True
    # Whether an error answer (4xx/5xx) of an atomic request keeps none of its writes.
    rollback_error_answers: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "sealed_hooks" not in cls.__dict__:
            sealed = {
                hook for base in cls.__mro__[1:] for hook in getattr(base, "sealed_hooks", ())
            }
            overridden = sorted(sealed & set(cls.__dict__))
            if overridden:
                raise TypeError(f"{cls.__name__} may not override {', '.join(overridden)}.")
        declared_scopes(cls, cls.scopes)
        if cls.__dict__.get("abstract", False):
            return
        handlers = [method for method in HANDLERS if hasattr(cls, method)]
        missing = [method for method in handlers if method not in cls.scopes]
        if not cls.scopes or missing:
            raise TypeError(
                f"{cls.__name__} must declare the scope for each handler: missing {missing}."
            )

    @contextmanager
    def request_transaction(self, request: HttpRequest) -> Iterator[None]:
        """An atomic view's whole request: one transaction, its restaurant entered at
        admission. Nothing for a non-atomic view (see :meth:`access_transaction`)."""
        if not self.atomic_request:
            yield
            return
        with tenant_scope() as scope:
            request.tenant_scope = scope  # type: ignore[attr-defined]
            yield

    @contextmanager
    def access_transaction(self, request: HttpRequest) -> Iterator[TenantScope]:
        """Where admission and authorization run: inside the atomic request's transaction,
        or a short one of their own for a non-atomic view."""
        if self.atomic_request:
            yield request.tenant_scope  # type: ignore[attr-defined]
            return
        with tenant_scope() as scope:
            request.tenant_scope = scope  # type: ignore[attr-defined]
            yield scope

    def keep_writes(self, status_code: int) -> None:
        """After the handler: an error answer of an atomic request keeps none of its writes."""
        if self.atomic_request and self.rollback_error_answers and status_code >= 400:
            transaction.set_rollback(True)
