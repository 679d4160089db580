from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from audit import api as audit_api
from nordkestrel import views
from nordkestrel.api import ApiRootView
from nordkestrel.ratelimit import rate_limit
from staff import api as staff_api
from tenants import api as tenants_api

api_v1 = [
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
    path("restaurant", tenants_api.RestaurantSettingsView.as_view(), name="api-restaurant"),
    path(
        "restaurant/opening-hours",
        tenants_api.OpeningHoursView.as_view(),
        name="api-opening-hours",
    ),
    path("audit-events", audit_api.AuditEventListView.as_view(), name="api-audit-events"),
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
    # Password guessing against the platform admin: at most 10 attempts a minute per IP.
    path(
        "admin/login/",
        rate_limit(key="ip", rate="10/m", group="admin-login", method="POST")(admin.site.login),
    ),
    path("admin/", admin.site.urls),
]

if settings.DEV_AUTH:
    from dashboard import devauth

    urlpatterns += [
        path("dev/sign-in", devauth.dev_sign_in, name="dev-sign-in"),
        path("dev/jwks.json", devauth.dev_jwks, name="dev-jwks"),
    ]

handler400 = "nordkestrel.views.bad_request"
handler403 = "nordkestrel.views.permission_denied"
handler404 = "nordkestrel.views.page_not_found"
handler500 = "nordkestrel.views.server_error"
