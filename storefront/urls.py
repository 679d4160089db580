"""Every URL a storefront host answers: the diner's pages and the storefront API."""

from django.urls import include, path

from menus import api as menus_api
from nordkestrel import views

urlpatterns = [
    # The hot read comes first: the resolver tries every earlier route.
    path(
        "api/v1/storefront/menu",
        menus_api.StorefrontMenuView.as_view(),
        name="api-storefront-menu",
    ),
    path("api/v1/storefront/", include("storefront.api_urls")),
    path("healthz", views.healthz, name="healthz"),
    path(".well-known/security.txt", views.security_txt, name="security-txt"),
    path("", include("storefront.page_urls")),
]

handler400 = "nordkestrel.views.bad_request"
handler403 = "nordkestrel.views.permission_denied"
handler404 = "nordkestrel.views.page_not_found"
handler500 = "nordkestrel.views.server_error"
