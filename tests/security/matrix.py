"""What every API route is, for the security matrices: who may call it, on whose objects.

The meta-test in test_authorization.py reads every route from the URL resolver and fails
when one is missing here, so a new endpoint cannot skip the BOLA and role matrices.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from PIL import Image

OWNER_ADMIN = frozenset({"owner", "admin"})
OWNER_ADMIN_MANAGER = OWNER_ADMIN | {"manager"}
EVERYONE = frozenset({"owner", "admin", "manager", "cashier", "kitchen"})


@dataclass(frozen=True)
class Route:
    # method -> the roles SPEC.md's table allows
    roles: dict[str, frozenset[str]]
    # the model whose id the URL takes as `pk`, when it addresses one object
    object_kind: str | None = None
    # a body that passes validation for each write method (role matrix); bytes values are
    # sent as files in a multipart body
    bodies: dict[str, dict] = field(default_factory=dict)
    # business-rule answers an allowed role may get from the matrix's minimal data
    refusals: frozenset[int] = frozenset()
    # URL arguments other than `pk` (e.g. which export a download streams)
    url_kwargs: dict[str, str] = field(default_factory=dict)
    # headers a write method needs to pass validation (e.g. an Idempotency-Key)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    # the URL argument the object's id goes to, when it is not `pk`
    pk_kwarg: str = "pk"
    # the URL argument naming the object's webhook endpoint (a delivery is addressed under
    # its endpoint): our own endpoint's id, also when the object is another restaurant's
    parent_kwarg: str | None = None
    # An id of the route's kind that names nothing (a UUID where the URL takes one).
    missing_pk: int | str = 999_999_999


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, "PNG")
    return buffer.getvalue()


# A real image for the upload routes.
PNG = _png()

# Public by design: the API's own description.
PUBLIC = {"api-root", "api-schema", "api-docs"}
# The storefront API, on storefront hosts only (storefront/urls.py): the host picks the
# restaurant, and an order is addressed by its unguessable public id.
STOREFRONT = {
    "api-storefront-menu",
    "api-storefront-options",
    "api-storefront-quote",
    "api-storefront-checkout",
    "api-storefront-order",
    "api-storefront-order-payment",
}

ROUTES: dict[str, Route] = {
    "api-me": Route({"get": EVERYONE}),
    "api-api-keys": Route(
        {"get": OWNER_ADMIN, "post": OWNER_ADMIN},
        bodies={"post": {"name": "Matrix", "grants": {"orders": "read"}}},
    ),
    "api-api-key-settings": Route(
        {"get": OWNER_ADMIN, "patch": OWNER_ADMIN},
        bodies={"patch": {"rate_limit_per_minute": 120}},
    ),
    "api-api-key": Route(
        {"get": OWNER_ADMIN, "patch": OWNER_ADMIN},
        object_kind="api_key",
        bodies={"patch": {"name": "Renamed"}},
    ),
    # Only the key's creator rolls it (the matrix's key is the Owner's): 403 not_key_creator.
    "api-api-key-roll": Route(
        {"post": OWNER_ADMIN}, object_kind="api_key", refusals=frozenset({403})
    ),
    "api-api-key-revoke": Route({"post": OWNER_ADMIN}, object_kind="api_key"),
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
    "api-menus": Route(
        {"get": EVERYONE, "post": OWNER_ADMIN_MANAGER}, bodies={"post": {"name": "Dinner"}}
    ),
    "api-menu-detail": Route(
        {"get": EVERYONE, "patch": OWNER_ADMIN_MANAGER, "delete": OWNER_ADMIN_MANAGER},
        object_kind="menu",
        bodies={"patch": {"name": "Renamed"}},
    ),
    "api-menu-categories": Route(
        {"post": OWNER_ADMIN_MANAGER}, object_kind="menu", bodies={"post": {"name": "Soups"}}
    ),
    "api-menu-reorder": Route(
        {"post": OWNER_ADMIN_MANAGER}, object_kind="menu", bodies={"post": {"ids": []}}
    ),
    "api-category": Route(
        {"patch": OWNER_ADMIN_MANAGER, "delete": OWNER_ADMIN_MANAGER},
        object_kind="category",
        bodies={"patch": {"name": "Renamed"}},
    ),
    "api-category-reorder": Route(
        {"post": OWNER_ADMIN_MANAGER}, object_kind="category", bodies={"post": {"ids": []}}
    ),
    "api-items": Route(
        {"get": EVERYONE, "post": OWNER_ADMIN_MANAGER},
        bodies={"post": {"name": "Soup", "price": 500}},
    ),
    "api-item-detail": Route(
        {"get": EVERYONE, "patch": OWNER_ADMIN_MANAGER, "delete": OWNER_ADMIN_MANAGER},
        object_kind="item",
        bodies={"patch": {"price": 700}},
    ),
    "api-item-duplicate": Route({"post": OWNER_ADMIN_MANAGER}, object_kind="item"),
    "api-item-sold-out": Route(
        {"post": EVERYONE}, object_kind="item", bodies={"post": {"sold_out": True}}
    ),
    "api-modifier-groups": Route(
        {"get": EVERYONE, "post": OWNER_ADMIN_MANAGER},
        bodies={"post": {"name": "Sides", "min_selections": 0, "max_selections": 2}},
    ),
    "api-modifier-group-detail": Route(
        {"get": EVERYONE, "patch": OWNER_ADMIN_MANAGER, "delete": OWNER_ADMIN_MANAGER},
        object_kind="group",
        bodies={"patch": {"name": "Renamed"}},
    ),
    "api-modifier-group-modifiers": Route(
        {"post": OWNER_ADMIN_MANAGER},
        object_kind="group",
        bodies={"post": {"name": "Extra", "price_delta": 100}},
    ),
    "api-modifier": Route(
        {"patch": OWNER_ADMIN_MANAGER, "delete": OWNER_ADMIN_MANAGER},
        object_kind="modifier",
        bodies={"patch": {"price_delta": 50}},
    ),
    "api-modifier-sold-out": Route(
        {"post": EVERYONE}, object_kind="modifier", bodies={"post": {"sold_out": True}}
    ),
    "api-menu-preview": Route({"get": EVERYONE}),
    # An empty draft: allowed roles reach the "add a menu first" rule.
    "api-menu-publish": Route({"post": OWNER_ADMIN_MANAGER}, refusals=frozenset({400})),
    # A real (multipart) file: allowed roles import it and get 200.
    "api-menu-import": Route(
        {"post": OWNER_ADMIN_MANAGER},
        bodies={"post": {"file": b'{"menus": [{"name": "Imported", "categories": []}]}'}},
    ),
    "api-menu-versions": Route({"get": EVERYONE}),
    "api-menu-version-detail": Route({"get": EVERYONE}, object_kind="version"),
    # The only version is the live one: allowed roles reach "already live".
    "api-menu-version-rollback": Route(
        {"post": OWNER_ADMIN_MANAGER}, object_kind="version", refusals=frozenset({409})
    ),
    "api-item-image": Route(
        {"post": OWNER_ADMIN_MANAGER}, object_kind="item", bodies={"post": {"image": PNG}}
    ),
    "api-restaurant-logo": Route({"post": OWNER_ADMIN}, bodies={"post": {"image": PNG}}),
    # The matrix's restaurant is "Ours" (tests/conftest.py): the Owner's request passes, and
    # a cancel with nothing scheduled reaches "not pending" (409).
    "api-restaurant-deletion": Route(
        {"get": EVERYONE, "post": frozenset({"owner"}), "delete": frozenset({"owner"})},
        bodies={"post": {"confirm_name": "Ours"}},
        refusals=frozenset({409}),
    ),
    "api-orders": Route({"get": EVERYONE}),
    "api-order-detail": Route({"get": EVERYONE}, object_kind="order"),
    # The order is placed: every role can accept it.
    "api-order-status": Route(
        {"post": EVERYONE}, object_kind="order", bodies={"post": {"status": "accepted"}}
    ),
    "api-order-cancel": Route(
        {"post": OWNER_ADMIN_MANAGER}, object_kind="order", bodies={"post": {"reason": "Closed"}}
    ),
    "api-customers": Route({"get": OWNER_ADMIN_MANAGER}),
    "api-customer-detail": Route({"get": OWNER_ADMIN_MANAGER}, object_kind="customer"),
    "api-promotions": Route(
        {"get": OWNER_ADMIN_MANAGER, "post": OWNER_ADMIN_MANAGER},
        bodies={"post": {"code": "SPRING10", "kind": "percent", "value": 10}},
    ),
    "api-promotion-detail": Route(
        {"get": OWNER_ADMIN_MANAGER, "patch": OWNER_ADMIN_MANAGER},
        object_kind="promotion",
        bodies={"patch": {"description": "Spring sale", "max_redemptions": 50}},
    ),
    "api-promotion-redemptions": Route({"get": OWNER_ADMIN_MANAGER}, object_kind="promotion"),
    # Stripe is not configured here: the Owner reaches "not configured" (503).
    "api-payments-account": Route(
        {"get": OWNER_ADMIN, "post": frozenset({"owner"})}, refusals=frozenset({503})
    ),
    "api-payments-onboarding-link": Route(
        {"post": frozenset({"owner"})}, refusals=frozenset({503})
    ),
    # The matrix's order was paid at pickup: allowed roles reach "not refundable" (409).
    "api-order-refunds": Route(
        {"get": OWNER_ADMIN_MANAGER, "post": OWNER_ADMIN_MANAGER},
        object_kind="order",
        bodies={"post": {"amount": 100, "reason": "Cold food"}},
        headers={"post": {"Idempotency-Key": "matrix-refund-0001"}},
        refusals=frozenset({409}),
    ),
    # No Stripe account is connected here: the Owner reads "connected: false" and a payout
    # reaches "not connected" (409).
    "api-payouts": Route(
        {"get": frozenset({"owner"}), "post": frozenset({"owner"})},
        bodies={"post": {"amount": 100}},
        headers={"post": {"Idempotency-Key": "matrix-payout-0001"}},
        refusals=frozenset({409}),
    ),
    "api-disputes": Route({"get": OWNER_ADMIN}),
    "api-dispute-detail": Route({"get": OWNER_ADMIN}, object_kind="dispute"),
    "api-export-jobs": Route(
        {"get": OWNER_ADMIN, "post": OWNER_ADMIN}, bodies={"post": {"type": "orders"}}
    ),
    "api-export-job": Route({"get": OWNER_ADMIN}, object_kind="export"),
    "api-exports": Route({"get": OWNER_ADMIN}),
    # SPEC.md: "manage API keys and webhook endpoints" is the Owner's and the Admin's. URLs
    # on hosts that resolve nowhere may be saved (tests/conftest.py's DNS resolves nothing).
    "api-webhooks": Route(
        {"get": OWNER_ADMIN, "post": OWNER_ADMIN},
        bodies={"post": {"url": "https://hooks.example.com/nordkestrel", "event_types": []}},
    ),
    "api-webhook": Route(
        {"get": OWNER_ADMIN, "patch": OWNER_ADMIN, "delete": OWNER_ADMIN},
        object_kind="webhook_endpoint",
        bodies={"patch": {"description": "Renamed"}},
    ),
    "api-webhook-rotate": Route({"post": OWNER_ADMIN}, object_kind="webhook_endpoint"),
    "api-webhook-test": Route({"post": OWNER_ADMIN}, object_kind="webhook_endpoint"),
    "api-webhook-recover": Route(
        {"post": OWNER_ADMIN},
        object_kind="webhook_endpoint",
        bodies={"post": {"since": "2026-01-01T00:00:00Z"}},
    ),
    "api-webhook-deliveries": Route(
        {"get": OWNER_ADMIN}, object_kind="webhook_endpoint", pk_kwarg="endpoint_pk"
    ),
    "api-webhook-delivery": Route(
        {"get": OWNER_ADMIN}, object_kind="webhook_delivery", parent_kwarg="endpoint_pk"
    ),
    "api-webhook-delivery-resend": Route(
        {"post": OWNER_ADMIN}, object_kind="webhook_delivery", parent_kwarg="endpoint_pk"
    ),
    # The event log and its catalogue: every reader of the restaurant, each event filtered by
    # its type's scope (webhooks/events_api.py).
    "api-events": Route({"get": EVERYONE}),
    "api-event-types": Route({"get": EVERYONE}),
    "api-event": Route(
        {"get": EVERYONE},
        object_kind="event",
        missing_pk="01000000-0000-7000-8000-000000000000",
    ),
    # A streamed CSV (its body read as the response streams).
    "api-export-csv": Route({"get": OWNER_ADMIN}, url_kwargs={"export_type": "customers"}),
}
