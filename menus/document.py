"""The published document: everything the storefront shows, built from the draft in a fixed
number of queries whatever the menu's size."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any

from menus.images import image_url
from menus.models import (
    Category,
    CategoryItem,
    Item,
    ItemModifierGroup,
    Menu,
    Modifier,
    ModifierGroup,
)
from tenants.models import Restaurant


def build_document(restaurant: Restaurant) -> dict[str, Any]:
    """The current draft as diners would see it (7 queries, independent of size)."""
    menus = list(Menu.objects.values("id", "name", "description", "availability"))
    categories = list(Category.objects.values("id", "menu_id", "name", "description"))
    entries = list(CategoryItem.objects.values_list("category_id", "item_id"))
    items = list(Item.objects.values("id", "name", "description", "price", "image", "dietary_tags"))
    for item in items:
        # Stable URLs need R2_PUBLIC_BASE_URL in production (signed ones would expire).
        item["image_url"] = image_url(item["image"]) if item["image"] else None
    links = list(ItemModifierGroup.objects.values_list("item_id", "group_id"))
    groups = list(
        ModifierGroup.objects.values("id", "name", "min_selections", "max_selections", "required")
    )
    modifiers = list(Modifier.objects.values("id", "group_id", "name", "price_delta"))

    items_by_category: dict[int, list[int]] = defaultdict(list)
    for category_id, item_id in entries:
        items_by_category[category_id].append(item_id)
    categories_by_menu: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for category in categories:
        categories_by_menu[category["menu_id"]].append(
            {
                "id": category["id"],
                "name": category["name"],
                "description": category["description"],
                "items": items_by_category[category["id"]],
            }
        )
    groups_by_item: dict[int, list[int]] = defaultdict(list)
    for item_id, group_id in links:
        groups_by_item[item_id].append(group_id)
    modifiers_by_group: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for modifier in modifiers:
        modifiers_by_group[modifier["group_id"]].append(
            {"id": modifier["id"], "name": modifier["name"], "price_delta": modifier["price_delta"]}
        )
    placed = {item_id for _, item_id in entries}
    return {
        "restaurant": {
            "name": restaurant.name,
            "currency": restaurant.currency,
            "timezone": restaurant.timezone,
        },
        "menus": [
            {
                "id": menu["id"],
                "name": menu["name"],
                "description": menu["description"],
                "availability": menu["availability"],
                "categories": categories_by_menu[menu["id"]],
            }
            for menu in menus
        ],
        "items": {
            str(item["id"]): {**item, "modifier_groups": groups_by_item[item["id"]]}
            for item in items
            if item["id"] in placed
        },
        "modifier_groups": {
            str(group["id"]): {
                "id": group["id"],
                "name": group["name"],
                "min": group["min_selections"],
                "max": group["max_selections"],
                "required": group["required"],
                "modifiers": modifiers_by_group[group["id"]],
            }
            for group in groups
        },
    }


def serialize(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(serialized: str) -> str:
    return hashlib.sha256(serialized.encode()).hexdigest()


def summarize_changes(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """What publishing ``after`` changes for diners, item by item."""
    old = (before or {}).get("items", {})
    new = after.get("items", {})
    changed = []
    for key in sorted(set(old) & set(new), key=int):
        fields = [f for f in ("name", "description", "price", "image", "dietary_tags",
                              "modifier_groups") if old[key].get(f) != new[key].get(f)]  # fmt: skip
        if fields:
            changed.append({"id": int(key), "name": new[key]["name"], "fields": fields})
    added = sorted(set(new) - set(old), key=int)
    removed = sorted(set(old) - set(new), key=int)
    return {
        "added": [{"id": int(key), "name": new[key]["name"]} for key in added],
        "removed": [{"id": int(key), "name": old[key]["name"]} for key in removed],
        "changed": changed,
        "menus_before": len((before or {}).get("menus", [])),
        "menus_after": len(after.get("menus", [])),
    }
