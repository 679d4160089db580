"""The request chain: token → organization → restaurant → active roster entry → role.

``authenticate_token`` turns a verified Clerk session token into an :class:`Actor` inside the
request's tenant scope. Services receive the actor and check scopes with ``actor.require``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from audit import registry
from audit import services as audit
from nordkestrel.errors import PermissionDeniedError
from staff.clerk import ClerkSession, TokenRejected, verify_session_token
from staff.models import StaffMember
from staff.roles import REVERIFICATION_MINUTES, SENSITIVE_SCOPES, Role, scopes_for
from tenants.context import TenantScope
from tenants.models import Restaurant
from tenants.selectors import restaurant_id_for_organization


class ReverificationRequired(PermissionDeniedError):
    code = "reverification_required"


@dataclass(frozen=True)
class Actor:
    """Who is acting: their roster entry (which decides the role) and their session."""

    member: StaffMember
    session: ClerkSession | None = None

    @property
    def restaurant(self) -> Restaurant:
        return self.member.restaurant

    @property
    def role(self) -> Role:
        return Role(self.member.role)

    @property
    def scopes(self) -> frozenset[str]:
        return scopes_for(self.member.role)

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDeniedError("Your role does not allow this.")
        if scope in SENSITIVE_SCOPES and self.restaurant.require_mfa_for_sensitive_actions:
            verified = self.session is not None and self.session.second_factor_verified_within(
                REVERIFICATION_MINUTES
            )
            if not verified:
                raise ReverificationRequired(
                    "Verify your second factor again to do this (within the last "
                    f"{REVERIFICATION_MINUTES} minutes)."
                )


def _claim_invitation(session: ClerkSession) -> StaffMember | None:
    """First sign-in of an invited user: their pending roster entry becomes theirs."""
    email = session.email
    if not email:
        return None
    invited = (
        StaffMember.objects.select_for_update(no_key=True)
        .filter(clerk_user_id__isnull=True, active=True, email__iexact=email)
        .first()
    )
    if invited is None:
        return None
    invited.clerk_user_id = session.user_id
    invited.joined_at = timezone.now()
    invited.save(update_fields=["clerk_user_id", "joined_at", "updated_at"])
    member = StaffMember.objects.select_related("restaurant").get(pk=invited.pk)
    audit.record(
        registry.STAFF_JOINED,
        actor=Actor(member=member, session=session),
        target=member,
        changes={"clerk_user_id": {"before": None, "after": session.user_id}},
    )
    return member


def authenticate_token(token: str, scope: TenantScope) -> Actor:
    """Verify ``token`` and enter its restaurant in ``scope``; raise TokenRejected otherwise."""
    session = verify_session_token(token)
    if session.org_id is None:  # verify_session_token already refuses this; stay explicit
        raise TokenRejected("no_organization", "Select an organization first.", 403)
    restaurant_id = restaurant_id_for_organization(session.org_id)
    if restaurant_id is None:
        raise TokenRejected("unknown_organization", "This organization has no restaurant.", 403)
    scope.enter(Restaurant(pk=restaurant_id))
    member = (
        StaffMember.objects.select_related("restaurant")
        .filter(clerk_user_id=session.user_id)
        .first()
    ) or _claim_invitation(session)
    if member is None or not member.active:
        raise TokenRejected("not_on_roster", "You are not on this restaurant's staff.", 403)
    if member.restaurant.status == Restaurant.Status.SUSPENDED:
        raise TokenRejected("restaurant_suspended", "This restaurant is suspended.", 403)
    scope.refine(member.restaurant)
    return Actor(member=member, session=session)
