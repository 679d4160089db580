"""What a key may be granted: per resource none/read/write, built from the roles' scopes.

A grant level maps onto the same typed scopes (``staff.roles.Scope``) the roles use, so a
view's declared scope decides for a key exactly as for a person. ``write`` includes ``read``.
What no key may ever do (manage staff, API keys, the Stripe connection, payouts, domains,
integrations, security settings, the restaurant's deletion, the audit log) is in no
resource, so no grant can reach it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from staff.roles import ALL_SCOPES, Scope


class Level(enum.StrEnum):
    NONE = "none"
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Resource:
    name: str
    description: str
    read: frozenset[Scope]
    write: frozenset[Scope]
    # What every key holds at least (the restaurant's own settings: its name, time zone,
    # currency and hours, which any integration needs to make sense of the rest).
    minimum: Level = Level.NONE

    @property
    def levels(self) -> tuple[Level, ...]:
        levels = [Level.NONE] if self.minimum is Level.NONE else []
        if self.read:
            levels.append(Level.READ)
        if self.write:
            levels.append(Level.WRITE)
        return tuple(levels)

    def scopes(self, level: Level) -> frozenset[Scope]:
        if level is Level.WRITE:
            return self.read | self.write
        if level is Level.READ:
            return self.read
        return frozenset()


def _resource(
    name: str, description: str, read: set[Scope], write: set[Scope], minimum: Level = Level.NONE
) -> Resource:
    return Resource(name, description, frozenset(read), frozenset(write), minimum)


RESOURCES: dict[str, Resource] = {
    resource.name: resource
    for resource in (
        _resource(
            "restaurant",
            "Settings and opening hours (every key may read them).",
            {Scope.RESTAURANT_READ},
            {Scope.RESTAURANT_WRITE},
            minimum=Level.READ,
        ),
        _resource(
            "menus",
            "Menus, items, modifiers, images, publishing and sold-out.",
            {Scope.MENUS_READ},
            {Scope.MENUS_WRITE, Scope.MENUS_PUBLISH, Scope.MENUS_AVAILABILITY},
        ),
        _resource(
            "orders",
            "Orders with the diner's contact details; write moves them along or cancels them.",
            {Scope.ORDERS_READ, Scope.ORDERS_CONTACT},
            {Scope.ORDERS_PROGRESS, Scope.ORDERS_CANCEL},
        ),
        _resource("customers", "The restaurant's diners.", {Scope.CUSTOMERS_READ}, set()),
        _resource(
            "promotions", "Promotion codes.", {Scope.PROMOTIONS_READ}, {Scope.PROMOTIONS_WRITE}
        ),
        _resource(
            "payments",
            "Refunds and card disputes (write only: reading them is part of answering them).",
            set(),
            {Scope.PAYMENTS_REFUND, Scope.PAYMENTS_DISPUTES},
        ),
        _resource(
            "exports",
            "CSV exports (write: create and download them).",
            set(),
            {Scope.EXPORTS_CREATE},
        ),
        _resource(
            "webhooks",
            "Webhook endpoints and their delivery log (write: create, change, rotate, test and "
            "replay). An endpoint receives only the events and fields the key could read.",
            {Scope.WEBHOOKS_READ},
            {Scope.WEBHOOKS_MANAGE},
        ),
    )
}

# Scopes no key can hold, whatever its grants and whoever created it.
NEVER_GRANTED = frozenset(
    {
        Scope.STAFF_READ,
        Scope.STAFF_WRITE,
        Scope.API_KEYS_READ,
        Scope.API_KEYS_MANAGE,
        Scope.PAYMENTS_CONNECT,
        Scope.PAYOUTS_READ,
        Scope.PAYOUTS_TRIGGER,
        Scope.RESTAURANT_DELETE,
        Scope.RESTAURANT_SECURITY,
        Scope.DOMAINS_WRITE,
        Scope.INTEGRATIONS_WRITE,
        Scope.CAMPAIGNS_WRITE,
        # The audit log names staff (emails, roles, addresses) and other keys: what the
        # staff and key scopes above keep from a key.
        Scope.AUDIT_READ,
    }
)
GRANTABLE = frozenset(
    scope for resource in RESOURCES.values() for scope in resource.read | resource.write
)
if GRANTABLE & NEVER_GRANTED or GRANTABLE | NEVER_GRANTED != ALL_SCOPES:
    # A new scope is placed on purpose: in a resource, or among those no key may hold.
    raise ImportError("Every scope is either grantable to API keys or never granted.")


def normalise(grants: Mapping[str, str]) -> dict[str, str]:
    """Every resource with its level (its minimum where absent), in the resources' order."""
    return {
        name: str(Level(grants.get(name, resource.minimum))) for name, resource in RESOURCES.items()
    }


def scopes_of(grants: Mapping[str, str]) -> frozenset[Scope]:
    """The scopes ``grants`` stand for; unknown resources or levels grant nothing."""
    scopes: set[Scope] = set()
    for name, level in normalise_known(grants).items():
        resource = RESOURCES.get(name)
        if resource is None or level not in resource.levels:
            continue
        scopes |= resource.scopes(Level(level))
    return frozenset(scopes)


def normalise_known(grants: Mapping[str, str]) -> dict[str, str]:
    """``grants`` with every resource's minimum filled in; unknown names kept as they are."""
    known = {name: str(resource.minimum) for name, resource in RESOURCES.items()}
    return {**known, **{str(name): str(level) for name, level in grants.items()}}


def missing_from(grants: Mapping[str, str], held: frozenset[Scope]) -> list[str]:
    """The resources whose granted level needs a scope ``held`` lacks."""
    return [
        name
        for name, level in grants.items()
        if name in RESOURCES and not RESOURCES[name].scopes(Level(level)) <= held
    ]
