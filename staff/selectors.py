from __future__ import annotations

from staff.models import StaffMember
from tenants.context import tenant_bypass


def memberships_for_user(clerk_user_id: str) -> list[dict[str, object]]:
    """Every restaurant where this Clerk user is active staff (for the restaurant switcher).

    Crosses tenants on purpose, for one user's own entries only.
    """
    if not clerk_user_id:
        return []
    with tenant_bypass():
        rows = (
            StaffMember.unscoped.filter(clerk_user_id=clerk_user_id, active=True)
            .select_related("restaurant")
            .order_by("restaurant__name")
        )
        return [
            {
                "restaurant_id": row.restaurant_id,
                "slug": row.restaurant.slug,
                "name": row.restaurant.name,
                "role": row.role,
            }
            for row in rows
        ]
