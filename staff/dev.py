"""Development sign-in: session tokens as Clerk would issue them, signed with the local key
pair (nordkestrel/devkeys.py) whose public half settings give the verifier as
``CLERK_JWT_KEY``, so development tokens go through exactly the checks Clerk's do.
Nothing here is reachable when DJANGO_ENV=production (settings.DEV_AUTH is False).
"""

from __future__ import annotations

from nordkestrel.devkeys import development_private_key_pem, key_id


def mint_token(
    *,
    clerk_user_id: str,
    organization_id: str,
    email: str,
    azp: str | None = None,
    lifetime_seconds: int = 8 * 3600,
) -> str:
    """A session token as Clerk would issue it for this user in this organization."""
    from django.conf import settings

    from staff.clerk import sign_session_token

    if not settings.DEV_AUTH:
        raise RuntimeError("Development tokens do not exist in production.")
    return sign_session_token(
        development_private_key_pem(settings.DATA_DIR),
        kid=key_id(settings.DATA_DIR),
        issuer=settings.CLERK_ISSUER,
        azp=azp or settings.CLERK_AUTHORIZED_PARTIES[0],
        user_id=clerk_user_id,
        org_id=organization_id,
        org_role="member",
        lifetime_seconds=lifetime_seconds,
        extra={"email": email},
    )
