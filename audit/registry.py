"""The audit actions: stable dotted names, each with a sentence for people to read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AuditAction:
    name: str
    template: str  # formatted with actor and target labels, e.g. "{actor} invited {target}"


class DuplicateAction(ValueError):
    pass


_ACTIONS: dict[str, AuditAction] = {}


def register(name: str, template: str) -> AuditAction:
    if name in _ACTIONS:
        raise DuplicateAction(f"Audit action {name!r} is already registered.")
    if name.count(".") < 1 or name != name.lower():
        raise ValueError(f"Audit action names are lower-case and dotted: {name!r}")
    action = AuditAction(name, template)
    _ACTIONS[name] = action
    return action


def get(name: str) -> AuditAction:
    try:
        return _ACTIONS[name]
    except KeyError:
        raise LookupError(f"Unknown audit action {name!r}; register it first.") from None


def names() -> list[str]:
    return sorted(_ACTIONS)


# The actions the security page promises, and the housekeeping of the log itself. Later
# capabilities record these where they happen.
STAFF_INVITED = register("staff.invited", "{actor} invited {target}")
STAFF_JOINED = register("staff.joined", "{target} accepted the invitation")
STAFF_ROLE_CHANGED = register("staff.role_changed", "{actor} changed the role of {target}")
STAFF_UPDATED = register("staff.updated", "{actor} updated {target}")
STAFF_DEACTIVATED = register("staff.deactivated", "{actor} deactivated {target}")
RESTAURANT_SETTINGS_CHANGED = register(
    "restaurant.settings_changed", "{actor} changed the restaurant settings"
)
RESTAURANT_HOURS_CHANGED = register("restaurant.hours_changed", "{actor} changed opening hours")
RESTAURANT_DELETION_REQUESTED = register(
    "restaurant.deletion_requested", "{actor} requested deletion of the restaurant"
)
RESTAURANT_DELETION_CANCELLED = register(
    "restaurant.deletion_cancelled", "{actor} cancelled the deletion of the restaurant"
)
RESTAURANT_PURGED = register(
    "restaurant.purged", "{actor} purged the restaurant's data after its deletion"
)
MENU_PUBLISHED = register("menu.published", "{actor} published {target}")
MENU_ROLLED_BACK = register("menu.rolled_back", "{actor} rolled back {target}")
MENU_IMPORTED = register("menu.imported", "{actor} imported a menu file")
PAYMENT_REFUNDED = register("payment.refunded", "{actor} refunded {target}")
PAYOUT_TRIGGERED = register("payout.triggered", "{actor} triggered a payout")
PAYMENT_DISPUTE_OPENED = register("payment.dispute_opened", "{actor} reported the dispute {target}")
PAYMENT_DISPUTE_CLOSED = register("payment.dispute_closed", "{actor} closed the dispute {target}")
PAYMENTS_ACCOUNT_CONNECTED = register(
    "payments.account_connected", "{actor} connected Stripe account {target}"
)
DOMAIN_ADDED = register("domain.added", "{actor} added the domain {target}")
DOMAIN_REMOVED = register("domain.removed", "{actor} removed the domain {target}")
EXPORT_CREATED = register("export.created", "{actor} exported {target}")
INTEGRATION_CONNECTED = register("integration.connected", "{actor} connected {target}")
API_KEY_CREATED = register("api_key.created", "{actor} created the API key {target}")
API_KEY_UPDATED = register("api_key.updated", "{actor} changed the API key {target}")
API_KEY_ROLLED = register("api_key.rolled", "{actor} rolled the API key {target}")
API_KEY_REVOKED = register("api_key.revoked", "{actor} revoked the API key {target}")
API_KEY_SETTINGS_CHANGED = register(
    "api_key.settings_changed", "{actor} changed the rate limit of the restaurant's API keys"
)
WEBHOOK_ENDPOINT_CREATED = register(
    "webhook_endpoint.created", "{actor} created the webhook endpoint {target}"
)
WEBHOOK_ENDPOINT_UPDATED = register(
    "webhook_endpoint.updated", "{actor} changed the webhook endpoint {target}"
)
WEBHOOK_ENDPOINT_SECRET_ROTATED = register(
    "webhook_endpoint.secret_rotated", "{actor} rotated the signing secret of {target}"
)
WEBHOOK_ENDPOINT_DELETED = register(
    "webhook_endpoint.deleted", "{actor} deleted the webhook endpoint {target}"
)
WEBHOOK_ENDPOINT_DISABLED = register(
    "webhook_endpoint.disabled", "{actor} disabled the webhook endpoint {target}"
)
WEBHOOK_DELIVERIES_RESENT = register(
    "webhook_endpoint.resent", "{actor} sent deliveries to {target} again"
)
AUDIT_PRUNED = register("audit.pruned", "{actor} pruned audit events older than 12 months")
ORDER_CANCELLED = register("order.cancelled", "{actor} cancelled {target}")
PROMOTION_CREATED = register("promotion.created", "{actor} created the promotion {target}")
PROMOTION_UPDATED = register("promotion.updated", "{actor} changed the promotion {target}")
