"""The access policy: who acts, for which restaurant, with which role and scopes.

One :class:`Actor` is built per request by the credential class that recognised the request's
credential (staff/access.py, staff/credentials.py), like Sentry's ``request.access``; the API
and the dashboard check the scope each view declares on it, and services receive it and
check theirs again with ``actor.require``. Scopes and the recent second factor are checked
here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nordkestrel.errors import PermissionDeniedError
from staff.roles import REVERIFICATION_MINUTES, SENSITIVE_SCOPES, Role, Scope, scopes_for

if TYPE_CHECKING:
    from staff.clerk import ClerkSession
    from staff.models import StaffMember
    from tenants.models import Restaurant


class ReverificationRequired(PermissionDeniedError):
    code = "reverification_required"


class ScopeRequired(PermissionDeniedError):
    """403 for an actor without the scope; the API names the scope in a header
    (``Nordkestrel-Required-Scope``) so an integrator knows which grant was missing."""

    def __init__(self, detail: str, scope: Scope) -> None:
        super().__init__(detail)
        self.required_scope = scope.value


def _scope(scope: object) -> Scope:
    """A scope to check; anything else is a bug (a mistyped string), never a quiet 403."""
    if not isinstance(scope, Scope):
        raise TypeError(f"{scope!r} is not a Scope; use the enum (staff.roles.Scope).")
    return scope


@dataclass(frozen=True)
class Actor:
    """The access of one actor: their roster entry (which decides the role and so the
    scopes) and the credential's proof of a recent second factor.

    A Clerk session carries that proof (``session``); an actor with no session (a task, a
    test) has none. A credential that acts for a staff member with less than their role
    (an API key, say) subclasses this and narrows ``scopes``.
    """

    member: StaffMember
    session: ClerkSession | None = None

    @property
    def restaurant(self) -> Restaurant:
        return self.member.restaurant

    @property
    def role(self) -> Role:
        return Role(self.member.role)

    @property
    def scopes(self) -> frozenset[Scope]:
        return scopes_for(self.member.role)

    def second_factor_verified_within(self, minutes: int) -> bool:
        return self.session is not None and self.session.second_factor_verified_within(minutes)

    @property
    def via_api_key(self) -> bool:
        """Whether a key acts (for one restaurant, for its creator), not the person."""
        return False

    def identity(self) -> dict[str, object]:
        """Who is calling, as ``/me`` says it."""
        member = self.member
        return {
            "clerk_user_id": member.clerk_user_id,
            "staff_id": member.pk,
            "email": member.email,
            "name": member.name,
        }

    def refusal(self, scope: Scope) -> str:
        """What a refusal for lack of ``scope`` says."""
        return "Your role does not allow this."

    def has(self, scope: Scope) -> bool:
        """Whether the role grants ``scope`` (what a page may show; doing it is ``require``)."""
        return _scope(scope) in self.scopes

    def require(self, scope: Scope) -> None:
        """Refuse unless the role grants ``scope`` and, for a sensitive scope in a restaurant
        that asks for it, a second factor was verified in the last few minutes."""
        if not self.has(scope):
            raise ScopeRequired(self.refusal(scope), scope)
        if (
            scope in SENSITIVE_SCOPES
            and self.restaurant.require_mfa_for_sensitive_actions
            and not self.second_factor_verified_within(REVERIFICATION_MINUTES)
        ):
            raise ReverificationRequired(
                "Verify your second factor again to do this (within the last "
                f"{REVERIFICATION_MINUTES} minutes)."
            )
