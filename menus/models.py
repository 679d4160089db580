"""Menus: the draft operators edit, the immutable versions diners read, and the sold-out state.

The draft is relational (menus, categories, items, modifier groups, modifiers). Publishing
turns it into one precomputed JSON document (MenuVersion); the storefront reads the live
version and a small sold-out overlay from one row (StorefrontMenuState), or from the cache.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from tenants.models import TenantModel
from tenants.rls import RowLevelSecurity


class Menu(TenantModel):
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=500, blank=True)
    position = models.PositiveIntegerField(default=0)
    # [{"weekdays": [0..6], "start": "HH:MM", "end": "HH:MM"}], in the restaurant's time zone;
    # empty means always available.
    availability = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class Category(TenantModel):
    menu = models.ForeignKey(Menu, on_delete=models.CASCADE, related_name="categories")
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=500, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta(TenantModel.Meta):
        ordering = ["position", "id"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Item(TenantModel):
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=1000, blank=True)
    price = models.PositiveIntegerField(help_text="Minor units of the restaurant's currency.")
    image = models.CharField(max_length=255, blank=True)  # storage key
    dietary_tags = models.JSONField(default=list, blank=True)
    sold_out = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class CategoryItem(TenantModel):
    """An item's place in a category (an item may sit in several categories and menus)."""

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="entries")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="placements")
    position = models.PositiveIntegerField(default=0)

    class Meta(TenantModel.Meta):
        ordering = ["position", "id"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["restaurant", "category", "item"], name="menus_item_once_per_category"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} in {self.category_id}"


class ModifierGroup(TenantModel):
    name = models.CharField(max_length=80)
    min_selections = models.PositiveSmallIntegerField(default=0)
    max_selections = models.PositiveSmallIntegerField(default=1)
    required = models.BooleanField(default=False)

    class Meta(TenantModel.Meta):
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class ItemModifierGroup(TenantModel):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="group_links")
    group = models.ForeignKey(ModifierGroup, on_delete=models.CASCADE, related_name="item_links")
    position = models.PositiveIntegerField(default=0)

    class Meta(TenantModel.Meta):
        ordering = ["position", "id"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(
                fields=["restaurant", "item", "group"], name="menus_group_once_per_item"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group_id} on {self.item_id}"


class Modifier(TenantModel):
    group = models.ForeignKey(ModifierGroup, on_delete=models.CASCADE, related_name="modifiers")
    name = models.CharField(max_length=80)
    price_delta = models.IntegerField(default=0, help_text="Minor units; may be negative.")
    sold_out = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)

    class Meta(TenantModel.Meta):
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class MenuVersion(TenantModel):
    """A published menu: one immutable, precomputed document."""

    number = models.PositiveIntegerField()
    document = models.JSONField()
    content_hash = models.CharField(max_length=64)
    published_at = models.DateTimeField()
    published_by_id = models.BigIntegerField(null=True, blank=True)
    published_by_label = models.CharField(max_length=254, blank=True)
    rolled_back_from = models.PositiveIntegerField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-number"]
        constraints = [
            *TenantModel.Meta.constraints,
            models.UniqueConstraint(fields=["restaurant", "number"], name="menus_version_unique"),
        ]

    def __str__(self) -> str:
        return f"version {self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise RuntimeError("Published menu versions are immutable.")
        super().save(*args, **kwargs)


class StorefrontMenuState(TenantModel):
    """What the storefront serves, in one row: the live document and the sold-out overlay.

    Everything here is public (it is what any diner sees), so the table has a read policy
    for everyone; writes still need the restaurant's context.
    """

    live_version = models.ForeignKey(MenuVersion, null=True, on_delete=models.PROTECT)
    # Copied so the public read never joins the (tenant-only) versions table.
    live_number = models.PositiveIntegerField(default=0)
    document_json = models.TextField(blank=True)  # the live document, serialized once
    content_hash = models.CharField(max_length=64, blank=True)
    sold_out_items = models.JSONField(default=list)
    sold_out_modifiers = models.JSONField(default=list)
    overlay_revision = models.PositiveBigIntegerField(default=0)

    class Meta(TenantModel.Meta):
        constraints = [
            RowLevelSecurity(name="menus_storefrontmenustate_rls", public_read=True),
            models.UniqueConstraint(fields=["restaurant"], name="menus_one_state_per_restaurant"),
        ]

    def __str__(self) -> str:
        return f"storefront menu of {self.restaurant_id}"
