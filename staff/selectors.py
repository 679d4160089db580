from __future__ import annotations

from django.db import connection


def memberships_for_user(clerk_user_id: str) -> list[dict[str, object]]:
    """Every restaurant where this Clerk user is active staff (for the restaurant switcher).

    Crosses tenants on purpose, for one user's own entries only: through the database
    function ``nordkestrel_memberships`` (staff/migrations/0002), which answers this one
    question as the owner, so the application role itself never crosses.
    """
    if not clerk_user_id:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT restaurant_id, slug, name, role FROM nordkestrel_memberships(%s)",
            [clerk_user_id],
        )
        rows = cursor.fetchall()
    return [
        {"restaurant_id": restaurant_id, "slug": slug, "name": name, "role": role}
        for restaurant_id, slug, name, role in rows
    ]
