from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from tenants.models import Restaurant
from tenants.selectors import forget_organization


@admin.register(Restaurant)
class RestaurantAdmin(admin.ModelAdmin):
    """Platform staff manage restaurants; tenant rows are reached through the tenant's API."""

    list_display = ["name", "slug", "status", "clerk_organization_id", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "slug", "clerk_organization_id"]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: Restaurant, form: Any, change: bool) -> None:
        previous = (
            Restaurant.objects.filter(pk=obj.pk).values_list("clerk_organization_id", flat=True)
        ).first()
        super().save_model(request, obj, form, change)
        # The organization → restaurant lookup is cached; a reassigned id must not linger.
        forget_organization(previous)
        forget_organization(obj.clerk_organization_id)
