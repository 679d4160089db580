"""What every API route is, for the security matrices: who may call it, on whose objects.

The meta-test in test_authorization.py reads every route from the URL resolver and fails
when one is missing here, so a new endpoint cannot skip the BOLA and role matrices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OWNER_ADMIN = frozenset({"owner", "admin"})
OWNER_ADMIN_MANAGER = OWNER_ADMIN | {"manager"}
EVERYONE = frozenset({"owner", "admin", "manager", "cashier", "kitchen"})


@dataclass(frozen=True)
class Route:
    # method -> the roles SPEC.md's table allows
    roles: dict[str, frozenset[str]]
    # the model whose id the URL takes as `pk`, when it addresses one object
    object_kind: str | None = None
    # a body that passes validation for each write method (role matrix)
    bodies: dict[str, dict] = field(default_factory=dict)


PUBLIC = {"api-root", "api-schema", "api-docs"}

ROUTES: dict[str, Route] = {
    "api-me": Route({"get": EVERYONE}),
    "api-restaurant": Route(
        {"get": EVERYONE, "patch": OWNER_ADMIN}, bodies={"patch": {"phone": "+358 40 123"}}
    ),
    "api-opening-hours": Route(
        {"get": EVERYONE, "put": OWNER_ADMIN},
        bodies={
            "put": {
                "weekly": [{"weekday": 0, "opens": "10:00", "closes": "20:00"}],
                "exceptions": [],
            }
        },
    ),
    "api-staff-list": Route(
        {"get": OWNER_ADMIN_MANAGER, "post": OWNER_ADMIN},
        bodies={"post": {"email": "fresh@example.com", "role": "kitchen"}},
    ),
    "api-staff-detail": Route(
        {"get": OWNER_ADMIN_MANAGER, "patch": OWNER_ADMIN},
        object_kind="staff",
        bodies={"patch": {"name": "Renamed"}},
    ),
    "api-staff-deactivate": Route({"post": OWNER_ADMIN}, object_kind="staff"),
    "api-audit-events": Route({"get": OWNER_ADMIN}),
}
