"""The current restaurant: a ContextVar in Python and a transaction-local setting in PostgreSQL.

Every tenant query is filtered by the restaurant held here (the manager, wall 1), and the same
restaurant is written to ``app.restaurant_id`` for row-level security (wall 3). Both are set
by :func:`tenant_context` and always restored when it exits, error or not. Platform code that
must cross tenants (purge jobs, periodic jobs, seeding) says so with :func:`tenant_bypass`,
which runs its block as the platform role over a connection of its own: no setting the
application role may change lets it across (nordkestrel/dbrouting.py).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connections, transaction

from nordkestrel.dbrouting import PLATFORM, current_alias

if TYPE_CHECKING:
    from tenants.models import Restaurant

RESTAURANT_SETTING = "app.restaurant_id"

logger = logging.getLogger(__name__)

_restaurant: ContextVar[Restaurant | None] = ContextVar("restaurant", default=None)
_bypass: ContextVar[bool] = ContextVar("tenant_bypass", default=False)


class TenantNotSet(RuntimeError):
    """Tenant data was touched with no restaurant in context: a bug, never a user error."""


class PlatformRoleUnavailable(RuntimeError):
    """Platform code ran in a process without the platform role's credential: in
    production only workers and management commands hold it (README, "Database roles")."""


class TenantMismatch(RuntimeError):
    """An object of one restaurant was about to be written inside another's context."""


def current_restaurant() -> Restaurant:
    restaurant = _restaurant.get()
    if restaurant is None:
        raise TenantNotSet(
            "No restaurant is set. Enter tenant_context(restaurant) (requests do this when "
            "they authenticate; tasks take restaurant_id and enter it themselves)."
        )
    return restaurant


def current_restaurant_or_none() -> Restaurant | None:
    return _restaurant.get()


def bypass_active() -> bool:
    return _bypass.get()


def _apply(using: str, restaurant_id: str) -> str:
    """Set the restaurant for this transaction; return the previous value."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT current_setting(%s, true), set_config(%s, %s, true)",
            [RESTAURANT_SETTING, RESTAURANT_SETTING, restaurant_id],
        )
        row = cursor.fetchone()
    return row[0] or ""


class TenantScope:
    """A scope whose restaurant is chosen partway through, as a request's is at authentication."""

    def __init__(self, using: str) -> None:
        self.using = using
        self._previous: str | None = None
        self._restaurant_tokens: list[Token[Restaurant | None]] = []
        self._bypass_tokens: list[Token[bool]] = []

    @property
    def entered(self) -> bool:
        return self._previous is not None

    def _enter(self, restaurant: Restaurant | None, bypass: bool) -> None:
        if self.entered:
            raise RuntimeError("This scope already has its restaurant.")
        if restaurant is not None and restaurant.pk is None:
            raise ValueError("A tenant scope needs a saved restaurant.")
        self._previous = _apply(self.using, str(restaurant.pk) if restaurant else "")
        self._restaurant_tokens.append(_restaurant.set(restaurant))
        self._bypass_tokens.append(_bypass.set(bypass))

    def enter(self, restaurant: Restaurant) -> None:
        self._enter(restaurant, bypass=False)

    def enter_bypass(self) -> None:
        self._enter(None, bypass=True)

    def refine(self, restaurant: Restaurant) -> None:
        """Swap in a fuller instance of the same restaurant (e.g. loaded with the roster)."""
        current = _restaurant.get()
        if current is None or current.pk != restaurant.pk:
            raise TenantMismatch("refine() keeps the restaurant; it cannot switch tenants.")
        self._restaurant_tokens.append(_restaurant.set(restaurant))

    def _restore(self) -> None:
        connection = connections[self.using]
        # After an error the transaction (or savepoint) rolls back, restoring the settings.
        if self._previous is not None and not connection.needs_rollback:
            _apply(self.using, self._previous)

    def _reset_context(self) -> None:
        for token in reversed(self._bypass_tokens):
            _bypass.reset(token)
        for restaurant_token in reversed(self._restaurant_tokens):
            _restaurant.reset(restaurant_token)


@contextmanager
def tenant_scope(*, using: str | None = None) -> Iterator[TenantScope]:
    """One transaction whose restaurant is set later with ``scope.enter(restaurant)``.

    It runs on the connection of the block it is in (the platform's inside
    :func:`tenant_bypass`, so that one transaction holds the whole block), unless ``using``
    names another; every query of the block goes there (nordkestrel/dbrouting.py)."""
    using = using or current_alias.get()
    scope = TenantScope(using)
    # SET LOCAL ends with the transaction: only a scope nested in an outer transaction has
    # to put the previous values back.
    nested = connections[using].in_atomic_block
    alias_token = current_alias.set(using)
    try:
        with transaction.atomic(using=using):
            yield scope
            if nested:
                scope._restore()
    finally:
        scope._reset_context()
        current_alias.reset(alias_token)


@contextmanager
def tenant_context(restaurant: Restaurant, *, using: str | None = None) -> Iterator[Restaurant]:
    """Run the block as ``restaurant``: scoped managers, RLS setting, one transaction."""
    with tenant_scope(using=using) as scope:
        scope.enter(restaurant)
        yield restaurant


def _log_platform_access(**extra: object) -> None:
    """Refuse where there is no platform role; log who crossed: the function that entered
    the block (above contextlib's frame)."""
    if not settings.PLATFORM_ROLE_AVAILABLE:
        raise PlatformRoleUnavailable(
            "This process has no platform role (DATABASE_PLATFORM_URL): code that crosses "
            "restaurants runs in workers and management commands."
        )
    caller = sys._getframe(3)
    name = f"{caller.f_globals.get('__name__')}.{caller.f_code.co_qualname}"
    logger.info("Platform access by %s", name, extra={"caller": name, **extra})


@contextmanager
def tenant_bypass() -> Iterator[None]:
    """The one named escape hatch: platform code that must see every restaurant's rows.

    The block runs as the platform role, on the ``platform`` connection, in one transaction
    of its own; each use is logged with the code that asked. A restaurant's context entered
    inside it stays on that connection (managers filter to the restaurant again)."""
    _log_platform_access()
    with tenant_scope(using=PLATFORM) as scope:
        scope.enter_bypass()
        yield


@contextmanager
def platform_context(restaurant: Restaurant) -> Iterator[Restaurant]:
    """One restaurant's context, run as the platform role: for platform code that must do
    for one restaurant what its own role may not (pruning its audit log). Logged."""
    _log_platform_access(restaurant=restaurant.pk)
    with tenant_context(restaurant, using=PLATFORM):
        yield restaurant
