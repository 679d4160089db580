from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from tenants.models import Restaurant
from tenants.selectors import forget_organization, forget_storefront_host


@admin.register(Restaurant)
class RestaurantAdmin(admin.ModelAdmin):
    """Platform staff manage restaurants; tenant rows are reached through the tenant's API."""

    list_display = ["name", "slug", "status", "clerk_organization_id", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "slug", "clerk_organization_id"]
    # The deletion schedule changes only through the Owner's request, its cancel and the purge.
    readonly_fields = [
        "created_at",
        "updated_at",
        "deletion_requested_at",
        "purge_after",
        "purge_started_at",
    ]

    def save_model(self, request: HttpRequest, obj: Restaurant, form: Any, change: bool) -> None:
        previous = (
            Restaurant.objects.filter(pk=obj.pk).values("clerk_organization_id", "slug").first()
        )
        super().save_model(request, obj, form, change)
        # Organization and host lookups are cached; a reassigned id or a suspension must not
        # linger.
        for values in (previous or {}, {"clerk_organization_id": obj.clerk_organization_id,
                                        "slug": obj.slug}):  # fmt: skip
            forget_organization(values.get("clerk_organization_id"))
            if slug := values.get("slug"):
                forget_storefront_host(str(slug))
