"""Roles and the scopes each grants, exactly as SPEC.md's role table. Code checks scopes.

Scopes are an enum: ``Scope.MENUS_PUBLISH`` is checked by the type checker and an unknown
attribute fails at import, where a mistyped string would have been a silent 403.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MANAGER = "manager", "Manager"
    CASHIER = "cashier", "Cashier"
    KITCHEN = "kitchen", "Kitchen"


RANK = {Role.OWNER: 5, Role.ADMIN: 4, Role.MANAGER: 3, Role.CASHIER: 2, Role.KITCHEN: 1}


class Scope(StrEnum):
    RESTAURANT_READ = "restaurant:read"
    RESTAURANT_WRITE = "restaurant:write"
    # Changing the security settings themselves (e.g. whether MFA is required).
    RESTAURANT_SECURITY = "restaurant:security"
    STAFF_READ = "staff:read"
    STAFF_WRITE = "staff:write"
    MENUS_READ = "menus:read"
    MENUS_WRITE = "menus:write"
    MENUS_PUBLISH = "menus:publish"
    MENUS_AVAILABILITY = "menus:availability"
    ORDERS_READ = "orders:read"
    ORDERS_CONTACT = "orders:contact"
    ORDERS_PROGRESS = "orders:progress"
    ORDERS_CANCEL = "orders:cancel"
    PAYMENTS_REFUND = "payments:refund"
    CUSTOMERS_READ = "customers:read"
    PROMOTIONS_READ = "promotions:read"
    PROMOTIONS_WRITE = "promotions:write"
    CAMPAIGNS_WRITE = "campaigns:write"
    PAYMENTS_CONNECT = "payments:connect"
    # Reading the connected account's balance and payouts (triggering one is sensitive).
    PAYOUTS_READ = "payouts:read"
    PAYOUTS_TRIGGER = "payouts:trigger"
    # Card disputes (chargebacks) and the order evidence to answer them with.
    PAYMENTS_DISPUTES = "payments:disputes"
    DOMAINS_WRITE = "domains:write"
    INTEGRATIONS_WRITE = "integrations:write"
    EXPORTS_CREATE = "exports:create"
    AUDIT_READ = "audit:read"
    # The restaurant's API keys (apikeys/): listing them, and creating, rolling, revoking.
    API_KEYS_READ = "api_keys:read"
    API_KEYS_MANAGE = "api_keys:manage"
    # Outbound webhooks (webhooks/): listing endpoints and their delivery log; creating,
    # changing, rotating, testing and replaying.
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_MANAGE = "webhooks:manage"
    RESTAURANT_DELETE = "restaurant:delete"


_EVERYONE = frozenset(
    {
        Scope.RESTAURANT_READ,
        Scope.MENUS_READ,
        Scope.MENUS_AVAILABILITY,
        Scope.ORDERS_READ,
        Scope.ORDERS_PROGRESS,
    }
)
_CASHIER = _EVERYONE | {Scope.ORDERS_CONTACT}
_MANAGER = _CASHIER | {
    Scope.STAFF_READ,
    Scope.MENUS_WRITE,
    Scope.MENUS_PUBLISH,
    Scope.ORDERS_CANCEL,
    Scope.PAYMENTS_REFUND,
    Scope.CUSTOMERS_READ,
    Scope.PROMOTIONS_READ,
    Scope.PROMOTIONS_WRITE,
}
_ADMIN = _MANAGER | {
    Scope.RESTAURANT_WRITE,
    Scope.STAFF_WRITE,
    Scope.CAMPAIGNS_WRITE,
    Scope.DOMAINS_WRITE,
    Scope.INTEGRATIONS_WRITE,
    Scope.EXPORTS_CREATE,
    Scope.AUDIT_READ,
    Scope.PAYMENTS_DISPUTES,
    Scope.API_KEYS_READ,
    Scope.API_KEYS_MANAGE,
    Scope.WEBHOOKS_READ,
    Scope.WEBHOOKS_MANAGE,
}
_OWNER = _ADMIN | {
    Scope.PAYMENTS_CONNECT,
    Scope.PAYOUTS_READ,
    Scope.PAYOUTS_TRIGGER,
    Scope.RESTAURANT_DELETE,
    Scope.RESTAURANT_SECURITY,
}

SCOPES: dict[str, frozenset[Scope]] = {
    Role.OWNER: frozenset(_OWNER),
    Role.ADMIN: frozenset(_ADMIN),
    Role.MANAGER: frozenset(_MANAGER),
    Role.CASHIER: frozenset(_CASHIER),
    Role.KITCHEN: _EVERYONE,
}

ALL_SCOPES = frozenset(SCOPES[Role.OWNER])

# Actions that need a recently verified second factor when the restaurant asks for it.
SENSITIVE_SCOPES = frozenset(
    {
        Scope.STAFF_WRITE,
        Scope.PAYMENTS_CONNECT,
        Scope.PAYOUTS_TRIGGER,
        Scope.DOMAINS_WRITE,
        Scope.RESTAURANT_DELETE,
        Scope.RESTAURANT_SECURITY,
        Scope.API_KEYS_MANAGE,
    }
)
REVERIFICATION_MINUTES = 10


def scopes_for(role: str) -> frozenset[Scope]:
    return SCOPES[Role(role)]


def can_manage(actor_role: str, target_role: str) -> bool:
    """Whether ``actor_role`` may change a member holding (or about to hold) ``target_role``.

    Nobody manages a higher rank, and only an Owner touches Owners.
    """
    actor, target = Role(actor_role), Role(target_role)
    if target == Role.OWNER:
        return actor == Role.OWNER
    return RANK[actor] >= RANK[target] and Scope.STAFF_WRITE in SCOPES[actor]
