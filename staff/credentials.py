"""The Clerk session: how staff sign in, through the API and the dashboard alike.

The API reads it from ``Authorization: Bearer <token>`` only, the dashboard from Clerk's
``__session`` cookie only (SECURITY.md 1.1). Either way the chain is the same: token →
organization → restaurant → active roster entry → role.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone

from audit import registry
from audit import services as audit
from staff.access import Credential, CredentialRefused, FrontDoor, register
from staff.auth import Actor
from staff.clerk import ClerkSession, TokenRejected, verify_session_token
from staff.models import StaffMember
from tenants.context import TenantScope
from tenants.models import Restaurant
from tenants.selectors import restaurant_id_for_organization

SESSION_COOKIE = "__session"


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


@register
class ClerkSessionCredential(Credential):
    """A Clerk session token: the Bearer header on the API, the cookie on the dashboard."""

    front_doors = frozenset({FrontDoor.API, FrontDoor.DASHBOARD})
    # Tried last on the API: it answers for any ``Authorization`` header, so a malformed one
    # is refused here (401 ``invalid_header``) rather than ignored.
    order = 100
    challenge = "Bearer"
    openapi_name = "ClerkSession"
    openapi_scheme = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Clerk session token of a member of the restaurant's organization.",
    }

    def read(self, request: HttpRequest, door: FrontDoor) -> str | None:
        if door is FrontDoor.DASHBOARD:
            return request.COOKIES.get(SESSION_COOKIE) or None
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        keyword, _, token = header.partition(" ")
        if keyword != self.challenge or not token.strip():
            raise CredentialRefused("invalid_header", "Use 'Authorization: Bearer <token>'.")
        return token.strip()

    def authenticate(self, credential: str, scope: TenantScope) -> Actor:
        try:
            return authenticate_token(credential, scope)
        except TokenRejected as rejected:
            raise CredentialRefused(rejected.code, rejected.detail, rejected.status) from None
