from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apikeys import api as apikeys_api
from menus import api as menus_api
from menus import image_api, import_api
from nordkestrel import views
from nordkestrel.api import ApiRootView
from nordkestrel.ratelimit import OnOutage, rate_limit
from restaurants import api as restaurants_api
from restaurants import audit_api
from staff import api as staff_api
from webhooks import api as webhooks_api
from webhooks import events_api

api_v1: list[URLPattern | URLResolver] = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI sets a few inline styles; scripts stay our own files only.
    path(
        "docs/",
        csp_override({**settings.SECURE_CSP, "style-src": [CSP.SELF, CSP.UNSAFE_INLINE]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
    path("me", staff_api.MeView.as_view(), name="api-me"),
    path("api-keys", apikeys_api.ApiKeyListView.as_view(), name="api-api-keys"),
    path(
        "api-keys/settings", apikeys_api.ApiKeySettingsView.as_view(), name="api-api-key-settings"
    ),
    path("api-keys/<int:pk>", apikeys_api.ApiKeyDetailView.as_view(), name="api-api-key"),
    path("api-keys/<int:pk>/roll", apikeys_api.ApiKeyRollView.as_view(), name="api-api-key-roll"),
    path(
        "api-keys/<int:pk>/revoke",
        apikeys_api.ApiKeyRevokeView.as_view(),
        name="api-api-key-revoke",
    ),
    path("webhook-endpoints", webhooks_api.EndpointListView.as_view(), name="api-webhooks"),
    path(
        "webhook-endpoints/<int:pk>",
        webhooks_api.EndpointDetailView.as_view(),
        name="api-webhook",
    ),
    path(
        "webhook-endpoints/<int:pk>/rotate-secret",
        webhooks_api.EndpointRotateView.as_view(),
        name="api-webhook-rotate",
    ),
    path(
        "webhook-endpoints/<int:pk>/test",
        webhooks_api.EndpointTestView.as_view(),
        name="api-webhook-test",
    ),
    path(
        "webhook-endpoints/<int:pk>/recover",
        webhooks_api.EndpointRecoverView.as_view(),
        name="api-webhook-recover",
    ),
    path(
        "webhook-endpoints/<int:endpoint_pk>/deliveries",
        webhooks_api.DeliveryListView.as_view(),
        name="api-webhook-deliveries",
    ),
    path(
        "webhook-endpoints/<int:endpoint_pk>/deliveries/<int:pk>",
        webhooks_api.DeliveryDetailView.as_view(),
        name="api-webhook-delivery",
    ),
    path(
        "webhook-endpoints/<int:endpoint_pk>/deliveries/<int:pk>/resend",
        webhooks_api.DeliveryResendView.as_view(),
        name="api-webhook-delivery-resend",
    ),
    path("events", events_api.EventListView.as_view(), name="api-events"),
    path("events/types", events_api.EventTypeListView.as_view(), name="api-event-types"),
    path("events/<uuid:pk>", events_api.EventDetailView.as_view(), name="api-event"),
    path("restaurant", restaurants_api.RestaurantSettingsView.as_view(), name="api-restaurant"),
    path(
        "restaurant/opening-hours",
        restaurants_api.OpeningHoursView.as_view(),
        name="api-opening-hours",
    ),
    path("restaurant/logo", image_api.RestaurantLogoView.as_view(), name="api-restaurant-logo"),
    path(
        "restaurant/deletion",
        restaurants_api.RestaurantDeletionView.as_view(),
        name="api-restaurant-deletion",
    ),
    path("items/<int:pk>/image", image_api.ItemImageView.as_view(), name="api-item-image"),
    path("audit-events", audit_api.AuditEventListView.as_view(), name="api-audit-events"),
    path("menus", menus_api.MenuListView.as_view(), name="api-menus"),
    path("menus/preview", menus_api.PreviewView.as_view(), name="api-menu-preview"),
    path("menus/publish", menus_api.PublishView.as_view(), name="api-menu-publish"),
    path("menus/import", import_api.MenuImportView.as_view(), name="api-menu-import"),
    path("menus/<int:pk>", menus_api.MenuDetailView.as_view(), name="api-menu-detail"),
    path(
        "menus/<int:pk>/categories",
        menus_api.MenuCategoriesView.as_view(),
        name="api-menu-categories",
    ),
    path("menus/<int:pk>/reorder", menus_api.MenuReorderView.as_view(), name="api-menu-reorder"),
    path("categories/<int:pk>", menus_api.CategoryDetailView.as_view(), name="api-category"),
    path(
        "categories/<int:pk>/reorder",
        menus_api.CategoryReorderView.as_view(),
        name="api-category-reorder",
    ),
    path("items", menus_api.ItemListView.as_view(), name="api-items"),
    path("items/<int:pk>", menus_api.ItemDetailView.as_view(), name="api-item-detail"),
    path(
        "items/<int:pk>/duplicate",
        menus_api.ItemDuplicateView.as_view(),
        name="api-item-duplicate",
    ),
    path("items/<int:pk>/sold-out", menus_api.ItemSoldOutView.as_view(), name="api-item-sold-out"),
    path("modifier-groups", menus_api.GroupListView.as_view(), name="api-modifier-groups"),
    path(
        "modifier-groups/<int:pk>",
        menus_api.GroupDetailView.as_view(),
        name="api-modifier-group-detail",
    ),
    path(
        "modifier-groups/<int:pk>/modifiers",
        menus_api.GroupModifiersView.as_view(),
        name="api-modifier-group-modifiers",
    ),
    path("modifiers/<int:pk>", menus_api.ModifierDetailView.as_view(), name="api-modifier"),
    path(
        "modifiers/<int:pk>/sold-out",
        menus_api.ModifierSoldOutView.as_view(),
        name="api-modifier-sold-out",
    ),
    path("menu-versions", menus_api.VersionListView.as_view(), name="api-menu-versions"),
    path(
        "menu-versions/<int:pk>",
        menus_api.VersionDetailView.as_view(),
        name="api-menu-version-detail",
    ),
    path(
        "menu-versions/<int:pk>/rollback",
        menus_api.VersionRollbackView.as_view(),
        name="api-menu-version-rollback",
    ),
    path("", include("orders.api_urls")),
    path("", include("customers.api_urls")),
    path("", include("promotions.api_urls")),
    path("", include("payments.api_urls")),
    path("", include("payments.money_api_urls")),
    path("", include("exports.api_urls")),
    path("", include("exports.job_urls")),
    path("staff", staff_api.StaffListView.as_view(), name="api-staff-list"),
    path("staff/<int:pk>", staff_api.StaffDetailView.as_view(), name="api-staff-detail"),
    path(
        "staff/<int:pk>/deactivate",
        staff_api.StaffDeactivateView.as_view(),
        name="api-staff-deactivate",
    ),
]

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path(".well-known/security.txt", views.security_txt, name="security-txt"),
    path("api/v1/", include(api_v1)),
    path("dashboard/", include("dashboard.urls")),
    path("webhooks/stripe/", include("payments.urls")),
    # Password guessing against the platform admin: at most 10 attempts a minute per IP, and
    # none while the counter is down (a password can be guessed; 503 until Redis is back).
    path(
        "admin/login/",
        rate_limit(
            key="ip", rate="10/m", group="admin-login", method="POST", on_outage=OnOutage.REFUSE
        )(admin.site.login),
    ),
    path("admin/", admin.site.urls),
]

if settings.DEV_AUTH:
    from dashboard import devauth

    urlpatterns += [
        path("dev/sign-in", devauth.dev_sign_in, name="dev-sign-in"),
        path("dev/jwks.json", devauth.dev_jwks, name="dev-jwks"),
    ]

if settings.DEBUG or settings.DEV_AUTH:
    import re

    from django.urls import re_path
    from django.views.static import serve

    # Uploaded files on disk, in development only; production serves them from the bucket.
    urlpatterns += [
        re_path(
            rf"^{re.escape(settings.MEDIA_URL.lstrip('/'))}(?P<path>.*)$",
            serve,
            {"document_root": settings.MEDIA_ROOT},
        )
    ]

handler400 = "nordkestrel.views.bad_request"
handler403 = "nordkestrel.views.permission_denied"
handler404 = "nordkestrel.views.page_not_found"
handler500 = "nordkestrel.views.server_error"
