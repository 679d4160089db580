"""The dashboard's pages against SPEC.md's role table; a new page must join this matrix."""

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from dashboard.base import DashboardView
from tests.factories import token_for
from tests.security.objects import make_object

EVERYONE = {"owner", "admin", "manager", "cashier", "kitchen"}
# page -> method -> roles allowed
PAGES = {
    "/dashboard/": {"get": EVERYONE},
    "/dashboard/settings": {"get": EVERYONE, "post": {"owner", "admin"}},
    "/dashboard/deletion": {"get": {"owner"}, "post": {"owner"}},
    "/dashboard/staff": {"get": {"owner", "admin", "manager"}, "post": {"owner", "admin"}},
    "/dashboard/switch": {"post": EVERYONE},
    "/dashboard/audit": {"get": {"owner", "admin"}},
    "/dashboard/menus": {"get": EVERYONE, "post": {"owner", "admin", "manager"}},
    "/dashboard/menus/items/new": {"get": EVERYONE, "post": {"owner", "admin", "manager"}},
    "/dashboard/menus/items/<int:pk>": {"get": EVERYONE, "post": {"owner", "admin", "manager"}},
    "/dashboard/menus/items/<int:pk>/image": {"post": {"owner", "admin", "manager"}},
    "/dashboard/menus/publish": {"get": EVERYONE, "post": {"owner", "admin", "manager"}},
    "/dashboard/sold-out": {"get": EVERYONE, "post": EVERYONE},
    "/dashboard/kitchen": {"get": EVERYONE},
    "/dashboard/kitchen/queue": {"get": EVERYONE},
    "/dashboard/orders": {"get": EVERYONE},
    "/dashboard/orders/<int:pk>": {"get": EVERYONE},
    "/dashboard/orders/<int:pk>/status": {"post": EVERYONE},
    "/dashboard/orders/<int:pk>/cancel": {"post": {"owner", "admin", "manager"}},
    "/dashboard/customers": {"get": {"owner", "admin", "manager"}},
    "/dashboard/customers/<int:pk>": {"get": {"owner", "admin", "manager"}},
    "/dashboard/promotions": {
        "get": {"owner", "admin", "manager"},
        "post": {"owner", "admin", "manager"},
    },
    "/dashboard/promotions/<int:pk>": {
        "get": {"owner", "admin", "manager"},
        "post": {"owner", "admin", "manager"},
    },
    "/dashboard/payments": {"get": {"owner", "admin"}, "post": {"owner"}},
    "/dashboard/payments/refresh": {"get": {"owner"}},
    "/dashboard/payments/return": {"get": {"owner", "admin"}},
    "/dashboard/orders/<int:pk>/refund": {"post": {"owner", "admin", "manager"}},
    "/dashboard/payouts": {"get": {"owner"}, "post": {"owner"}},
    "/dashboard/disputes": {"get": {"owner", "admin"}},
    "/dashboard/disputes/<int:pk>": {"get": {"owner", "admin"}},
    "/dashboard/exports": {"get": {"owner", "admin"}, "post": {"owner", "admin"}},
    "/dashboard/exports/progress": {"get": {"owner", "admin"}},
    "/dashboard/exports/download": {"post": {"owner", "admin"}},
    "/dashboard/exports/<int:pk>/download": {"get": {"owner", "admin"}},
    "/dashboard/exports/<int:pk>/file": {"get": {"owner", "admin"}},
    "/dashboard/api-keys": {"get": {"owner", "admin"}, "post": {"owner", "admin"}},
    "/dashboard/api-keys/settings": {"post": {"owner", "admin"}},
    "/dashboard/api-keys/<int:pk>": {"get": {"owner", "admin"}, "post": {"owner", "admin"}},
    "/dashboard/api-keys/<int:pk>/roll": {"post": {"owner", "admin"}},
    "/dashboard/api-keys/<int:pk>/revoke": {"get": {"owner", "admin"}, "post": {"owner", "admin"}},
    "/dashboard/webhooks": {"get": {"owner", "admin"}, "post": {"owner", "admin"}},
    "/dashboard/webhooks/<int:pk>": {"get": {"owner", "admin"}, "post": {"owner", "admin"}},
    "/dashboard/webhooks/<int:pk>/state": {"post": {"owner", "admin"}},
    "/dashboard/webhooks/<int:pk>/test": {"post": {"owner", "admin"}},
    "/dashboard/webhooks/<int:pk>/rotate": {"post": {"owner", "admin"}},
    "/dashboard/webhooks/<int:pk>/recover": {"post": {"owner", "admin"}},
    "/dashboard/webhooks/<int:pk>/delete": {"get": {"owner", "admin"}, "post": {"owner", "admin"}},
    "/dashboard/webhooks/deliveries/<int:pk>/resend": {"post": {"owner", "admin"}},
}
# The kind of object a page's <int:pk> addresses (an item unless named here).
PAGE_OBJECTS = {
    "/dashboard/orders/<int:pk>": "order",
    "/dashboard/orders/<int:pk>/status": "order",
    "/dashboard/orders/<int:pk>/cancel": "order",
    "/dashboard/orders/<int:pk>/refund": "order",
    "/dashboard/disputes/<int:pk>": "dispute",
    "/dashboard/customers/<int:pk>": "customer",
    "/dashboard/promotions/<int:pk>": "promotion",
    "/dashboard/exports/<int:pk>/download": "export",
    "/dashboard/exports/<int:pk>/file": "export",
    "/dashboard/api-keys/<int:pk>": "api_key",
    "/dashboard/api-keys/<int:pk>/roll": "api_key",
    "/dashboard/api-keys/<int:pk>/revoke": "api_key",
    "/dashboard/webhooks/<int:pk>": "webhook_endpoint",
    "/dashboard/webhooks/<int:pk>/state": "webhook_endpoint",
    "/dashboard/webhooks/<int:pk>/test": "webhook_endpoint",
    "/dashboard/webhooks/<int:pk>/rotate": "webhook_endpoint",
    "/dashboard/webhooks/<int:pk>/recover": "webhook_endpoint",
    "/dashboard/webhooks/<int:pk>/delete": "webhook_endpoint",
    "/dashboard/webhooks/deliveries/<int:pk>/resend": "webhook_delivery",
}


def dashboard_views():
    resolver = get_resolver()
    dashboard = next(
        p
        for p in resolver.url_patterns
        if isinstance(p, URLResolver) and str(p.pattern) == "dashboard/"
    )
    return {
        "/dashboard/" + str(p.pattern): p.callback.view_class
        for p in dashboard.url_patterns
        if isinstance(p, URLPattern) and hasattr(p.callback, "view_class")
    }


def test_every_signed_in_page_is_in_the_matrix():
    views = {path: cls for path, cls in dashboard_views().items() if issubclass(cls, DashboardView)}
    assert set(views) == set(PAGES)
    for path, cls in views.items():
        assert set(cls.scopes) == set(PAGES[path]), path


CASES = [
    (path, method, role)
    for path, methods in PAGES.items()
    for method in methods
    for role in sorted(EVERYONE)
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method", "role"), CASES)
def test_each_role_reaches_exactly_its_pages(roster, path, method, role):
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token_for(roster[("ours", role)])
    target = make_object(PAGE_OBJECTS.get(path, "item"), roster[("ours", role)].restaurant)
    response = getattr(client, method)(path.replace("<int:pk>", str(target.pk)), {})
    if role in PAGES[path][method]:
        assert response.status_code not in (403, 500), response.content[:300]
    else:
        assert response.status_code == 403
