"""Every change to menus: the draft, publishing and rollback, and sold-out (86) toggles."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit import registry
from audit import services as audit
from menus import events as menu_events
from menus import storefront
from menus.document import build_document, content_hash, serialize, summarize_changes
from menus.models import (
    Category,
    CategoryItem,
    Item,
    ItemModifierGroup,
    Menu,
    MenuVersion,
    Modifier,
    ModifierGroup,
)
from nordkestrel import events
from nordkestrel.errors import ConflictError, InvalidInput
from nordkestrel.text import storable
from staff.auth import Actor
from staff.roles import Scope

TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
MAX_TAGS = 12


def _get(model: Any, pk: Any, attr: str) -> Any:
    """An object of this restaurant, or a 400 naming the field (another's id is unknown)."""
    try:
        return model.objects.get(pk=int(pk))
    except (model.DoesNotExist, ValueError, TypeError):
        raise InvalidInput(f"No such {model._meta.verbose_name} here.", attr=attr) from None


def validate_availability(windows: Any) -> list[dict[str, Any]]:
    if not isinstance(windows, list):
        raise InvalidInput("Availability is a list of time windows.", attr="availability")
    clean = []
    for index, window in enumerate(windows):
        attr = f"availability.{index}"
        if not isinstance(window, dict) or set(window) != {"weekdays", "start", "end"}:
            raise InvalidInput("Each window has weekdays, start and end.", attr=attr)
        days = window["weekdays"]
        if (
            not isinstance(days, list)
            or not days
            or any(not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 6 for d in days)
        ):
            raise InvalidInput("Weekdays are 0 (Monday) to 6 (Sunday).", attr=f"{attr}.weekdays")
        for key in ("start", "end"):
            if not isinstance(window[key], str) or not TIME.fullmatch(window[key]):
                raise InvalidInput("Times are HH:MM.", attr=f"{attr}.{key}")
        if window["start"] == window["end"]:
            raise InvalidInput("A window cannot start and end at the same time.", attr=attr)
        clean.append(
            {"weekdays": sorted(set(days)), "start": window["start"], "end": window["end"]}
        )
    return clean


def validate_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise InvalidInput(f"Up to {MAX_TAGS} dietary tags.", attr="dietary_tags")
    clean = []
    for tag in tags:
        if not isinstance(tag, str) or not re.fullmatch(r"[a-z0-9-]{1,30}", tag):
            raise InvalidInput("Tags are short lower-case words, e.g. vegan.", attr="dietary_tags")
        clean.append(tag)
    return sorted(set(clean))


def _check_text(fields: dict[str, Any]) -> None:
    """Names and descriptions PostgreSQL can store: no NUL, no lone surrogates, not blank."""
    for field, value in fields.items():
        if not isinstance(value, str):
            continue
        if not storable(value):
            raise InvalidInput("Use ordinary text.", attr=field)
        if field == "name" and not value.strip():
            raise InvalidInput("A name is required.", attr=field)


def _next_position(queryset: Any) -> int:
    return (queryset.aggregate(top=Max("position"))["top"] or 0) + 1


# --- Menus and categories ------------------------------------------------------------------


@transaction.atomic
def menu_save(*, actor: Actor, menu: Menu | None = None, **fields: Any) -> Menu:
    actor.require(Scope.MENUS_WRITE)
    _check_text(fields)
    if "availability" in fields:
        fields["availability"] = validate_availability(fields["availability"])
    if menu is None:
        menu = Menu(position=_next_position(Menu.objects.all()))
    for field, value in fields.items():
        setattr(menu, field, value)
    menu.save()
    return menu


@transaction.atomic
def category_save(
    *, actor: Actor, category: Category | None = None, menu_id: Any = None, **fields: Any
) -> Category:
    actor.require(Scope.MENUS_WRITE)
    _check_text(fields)
    if category is None:
        menu = _get(Menu, menu_id, "menu")
        category = Category(menu=menu, position=_next_position(menu.categories.all()))
    for field, value in fields.items():
        setattr(category, field, value)
    category.save()
    return category


@transaction.atomic
def reorder(*, actor: Actor, queryset: Any, ids: list[int], attr: str) -> None:
    """Put exactly these rows in this order (positions 1..n)."""
    actor.require(Scope.MENUS_WRITE)
    rows = {row.pk: row for row in queryset.select_for_update(no_key=True, of=("self",))}
    if sorted(ids) != sorted(rows) or len(set(ids)) != len(ids):
        raise InvalidInput("List every entry exactly once.", attr=attr)
    for position, pk in enumerate(ids, start=1):
        rows[pk].position = position
    if rows:
        queryset.model.objects.bulk_update(list(rows.values()), ["position"])


@transaction.atomic
def delete(*, actor: Actor, obj: Menu | Category | Item | ModifierGroup | Modifier) -> None:
    actor.require(Scope.MENUS_WRITE)
    obj.delete()


# --- Items -----------------------------------------------------------------------------------


def _set_links(item: Item, category_ids: list[Any] | None, group_ids: list[Any] | None) -> None:
    if category_ids is not None:
        categories = [_get(Category, pk, "categories") for pk in dict.fromkeys(category_ids)]
        CategoryItem.objects.filter(item=item).exclude(category__in=categories).delete()
        have = set(CategoryItem.objects.filter(item=item).values_list("category_id", flat=True))
        for category in categories:
            if category.pk not in have:
                CategoryItem.objects.create(
                    category=category,
                    item=item,
                    position=_next_position(category.entries.all()),
                )
    if group_ids is not None:
        groups = [_get(ModifierGroup, pk, "modifier_groups") for pk in dict.fromkeys(group_ids)]
        ItemModifierGroup.objects.filter(item=item).delete()
        ItemModifierGroup.objects.bulk_create(
            ItemModifierGroup(item=item, group=group, position=position)
            for position, group in enumerate(groups, start=1)
        )


@transaction.atomic
def item_save(
    *,
    actor: Actor,
    item: Item | None = None,
    categories: list[Any] | None = None,
    modifier_groups: list[Any] | None = None,
    **fields: Any,
) -> Item:
    actor.require(Scope.MENUS_WRITE)
    _check_text(fields)
    if "dietary_tags" in fields:
        fields["dietary_tags"] = validate_tags(fields["dietary_tags"])
    if "price" in fields and (not isinstance(fields["price"], int) or fields["price"] < 0):
        raise InvalidInput("Prices are whole minor units, zero or more.", attr="price")
    item = item or Item()
    for field, value in fields.items():
        setattr(item, field, value)
    item.save()
    _set_links(item, categories, modifier_groups)
    return item


@transaction.atomic
def item_duplicate(*, actor: Actor, item: Item) -> Item:
    actor.require(Scope.MENUS_WRITE)
    copy = Item.objects.create(
        name=f"{item.name} (copy)"[:120],
        description=item.description,
        price=item.price,
        image=item.image,
        dietary_tags=item.dietary_tags,
    )
    _set_links(
        copy,
        list(item.placements.values_list("category_id", flat=True)),
        list(item.group_links.values_list("group_id", flat=True)),
    )
    return copy


# --- Modifier groups ------------------------------------------------------------------------


def _check_group(group: ModifierGroup) -> None:
    if group.min_selections > group.max_selections:
        raise InvalidInput("The minimum cannot exceed the maximum.", attr="min_selections")
    if group.max_selections < 1:
        raise InvalidInput("Allow at least one selection.", attr="max_selections")
    if group.required and group.min_selections < 1:
        group.min_selections = 1


@transaction.atomic
def group_save(*, actor: Actor, group: ModifierGroup | None = None, **fields: Any) -> ModifierGroup:
    actor.require(Scope.MENUS_WRITE)
    _check_text(fields)
    group = group or ModifierGroup()
    for field, value in fields.items():
        setattr(group, field, value)
    _check_group(group)
    group.save()
    return group


@transaction.atomic
def modifier_save(
    *, actor: Actor, modifier: Modifier | None = None, group_id: Any = None, **fields: Any
) -> Modifier:
    actor.require(Scope.MENUS_WRITE)
    _check_text(fields)
    if modifier is None:
        group = _get(ModifierGroup, group_id, "group")
        modifier = Modifier(group=group, position=_next_position(group.modifiers.all()))
    if "price_delta" in fields and not isinstance(fields["price_delta"], int):
        raise InvalidInput("Price changes are whole minor units.", attr="price_delta")
    for field, value in fields.items():
        setattr(modifier, field, value)
    modifier.save()
    return modifier


# --- Sold out (86) -------------------------------------------------------------------------


@transaction.atomic
def set_sold_out(*, actor: Actor, obj: Item | Modifier, sold_out: bool) -> Item | Modifier:
    """Every role may 86 an item or a modifier; diners see it at once, with no publish."""
    actor.require(Scope.MENUS_AVAILABILITY)
    changed = (
        type(obj).objects.filter(pk=obj.pk).exclude(sold_out=sold_out).update(sold_out=sold_out)
    )
    obj.sold_out = sold_out
    if changed:
        events.publish(menu_events.sold_out_changed(obj, at=timezone.now()))
    storefront.refresh_overlay()
    return obj


# --- Publishing ------------------------------------------------------------------------------


def check_publishable(document: dict[str, Any]) -> None:
    for group in document["modifier_groups"].values():
        used = any(group["id"] in item["modifier_groups"] for item in document["items"].values())
        if used and group["required"] and not group["modifiers"]:
            raise InvalidInput(
                f"The required group '{group['name']}' has no modifiers.", attr="modifier_groups"
            )
        if used and group["min"] > len(group["modifiers"]):
            raise InvalidInput(
                f"'{group['name']}' asks for more choices than it offers.", attr="modifier_groups"
            )


def preview(*, actor: Actor) -> dict[str, Any]:
    actor.require(Scope.MENUS_READ)
    document = build_document(actor.restaurant)
    live = MenuVersion.objects.order_by("-number").first()
    return {
        "document": document,
        "changes": summarize_changes(live.document if live else None, document),
    }


def _new_version(
    actor: Actor, document: dict[str, Any], rolled_back_from: int | None
) -> MenuVersion:
    serialized = serialize(document)
    number = (MenuVersion.objects.aggregate(top=Max("number"))["top"] or 0) + 1
    version = MenuVersion.objects.create(
        number=number,
        document=document,
        content_hash=content_hash(serialized),
        published_at=timezone.now(),
        published_by_id=actor.member.pk,
        published_by_label=actor.member.label,
        rolled_back_from=rolled_back_from,
    )
    storefront.go_live(version, serialized)
    events.publish(menu_events.published(version))
    return version


@transaction.atomic
def publish(*, actor: Actor) -> tuple[MenuVersion, dict[str, Any]]:
    actor.require(Scope.MENUS_PUBLISH)
    storefront.lock()
    document = build_document(actor.restaurant)
    if not document["menus"]:
        raise InvalidInput("Add a menu before publishing.", attr="menus")
    check_publishable(document)
    live = MenuVersion.objects.order_by("-number").first()
    changes = summarize_changes(live.document if live else None, document)
    version = _new_version(actor, document, None)
    audit.record(
        registry.MENU_PUBLISHED,
        actor=actor,
        target=version,
        changes={"version": {"before": live.number if live else None, "after": version.number}},
    )
    return version, changes


@transaction.atomic
def rollback(*, actor: Actor, version: MenuVersion) -> MenuVersion:
    """Put an earlier version live again, as a new version (history is never rewritten)."""
    actor.require(Scope.MENUS_PUBLISH)
    storefront.lock()
    live = MenuVersion.objects.order_by("-number").first()
    if live is not None and live.content_hash == version.content_hash:
        raise ConflictError("That version is already what diners see.", code="already_live")
    new = _new_version(actor, version.document, version.number)
    audit.record(
        registry.MENU_ROLLED_BACK,
        actor=actor,
        target=new,
        changes={"version": {"before": live.number if live else None, "after": new.number},
                 "rolled_back_to": {"before": None, "after": version.number}},
    )  # fmt: skip
    return new
