"""Menu import, applying: a parsed file (:mod:`menus.import_parse`) merged into the draft by
natural keys, never deleting.

Natural keys: a menu's name; a category's name within its menu; an item's name (an item is
shared by every category it sits in); a modifier group's name; a modifier's name within its
group. Names match exactly (after trimming spaces); where the draft already holds two rows
with one key, the oldest is the match. Matched rows get the fields the file changes, the rest
is created, nothing is removed, so importing the same file twice changes nothing the second
time. The import is one service (scope menus:write, one transaction, one audit event); it
validates with the draft services' validators and writes in bulk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit import registry
from audit import services as audit
from menus.import_parse import ImportData, ItemEntry
from menus.models import Category, CategoryItem, Item, ItemModifierGroup, Menu, Modifier
from menus.models import ModifierGroup as Group
from nordkestrel import locks
from nordkestrel.errors import InvalidInput
from staff.auth import Actor
from staff.roles import Scope
from tenants.context import current_restaurant

KINDS = ("menus", "categories", "items", "modifier_groups", "modifiers", "placements")
BATCH = 1000  # rows per INSERT / UPDATE statement

# In bulk: a few queries per kind of row, however long the file (one service call per row
# took over 30 seconds for 5000 rows). The rules the services enforce were checked when the
# file was read, with the same validators; positions follow the services' rule (after the
# last one).


def _oldest_by[T](rows: Iterable[T], key: Callable[[T], Any]) -> dict[Any, T]:
    """The first row per key, from rows ordered oldest first."""
    found: dict[Any, T] = {}
    for row in rows:
        found.setdefault(key(row), row)
    return found


def _tops(queryset: Any, parent: str) -> dict[int, int]:
    """The highest position under each parent (e.g. per category)."""
    rows = queryset.values(parent).annotate(top=Max("position")).values_list(parent, "top")
    return {parent_id: top or 0 for parent_id, top in rows}


def _number(rows: list[Any], tops: dict[Any, int], parent: str | None) -> None:
    """New rows go after the last one under their parent, in the file's order."""
    for row in rows:
        key = getattr(row, parent) if parent else None
        tops[key] = row.position = tops.get(key, 0) + 1


class _Import:
    def __init__(self, data: ImportData) -> None:
        self.data = data
        self.counts = {
            outcome: dict.fromkeys(KINDS, 0) for outcome in ("created", "updated", "unchanged")
        }

    def run(self) -> dict[str, dict[str, int]]:
        groups = self.groups()
        categories = self.menus()
        self.items(groups, categories)
        return self.counts

    def merge[T](self, kind: str, obj: T | None, make: Callable[[], T], fields: dict[str, Any],
                 new: list[T], changed: list[T]) -> T:  # fmt: skip
        """The existing row with the file's fields set (queued when any differ), or a new row."""
        if obj is None:
            obj = make()
            new.append(obj)
            self.counts["created"][kind] += 1
            return obj
        differs = _assign(obj, fields)
        if differs:
            changed.append(obj)
        self.counts["updated" if differs else "unchanged"][kind] += 1
        return obj

    def groups(self) -> dict[str, Group]:
        entries = self.data.modifier_groups
        existing = _oldest_by(
            Group.objects.filter(name__in=[g.name for g in entries]).order_by("id"),
            lambda g: g.name,
        )
        new: list[Group] = []
        changed: list[Group] = []
        groups: dict[str, Group] = {}
        for entry in entries:
            fields = {
                "min_selections": entry.min_selections,
                "max_selections": entry.max_selections,
                "required": entry.required,
            }
            groups[entry.name] = self.merge(
                "modifier_groups", existing.get(entry.name),
                partial(Group, name=entry.name, **fields), fields, new, changed,
            )  # fmt: skip
        _save(Group, new, changed, ["min_selections", "max_selections", "required"])

        matched = list(existing.values())
        modifiers = _oldest_by(
            Modifier.objects.filter(group__in=matched).order_by("id"),
            lambda m: (m.group_id, m.name),
        )
        tops = _tops(Modifier.objects.filter(group__in=matched), "group_id")
        new_modifiers: list[Modifier] = []
        changed_modifiers: list[Modifier] = []
        for entry in entries:
            group = groups[entry.name]
            for modifier in entry.modifiers:
                fields = {"price_delta": modifier.price_delta}
                self.merge(
                    "modifiers", modifiers.get((group.pk, modifier.name)),
                    partial(Modifier, group=group, name=modifier.name, **fields),
                    fields, new_modifiers, changed_modifiers,
                )  # fmt: skip
        _number(new_modifiers, tops, "group_id")
        _save(Modifier, new_modifiers, changed_modifiers, ["price_delta"])
        return groups

    def menus(self) -> dict[str, list[Category]]:
        """Menus and categories; returns the categories each item (by name) sits in."""
        entries = self.data.menus
        existing = _oldest_by(
            Menu.objects.filter(name__in=[m.name for m in entries]).order_by("id"),
            lambda m: m.name,
        )
        top = {None: Menu.objects.aggregate(top=Max("position"))["top"] or 0}
        new: list[Menu] = []
        changed: list[Menu] = []
        menus: dict[str, Menu] = {}
        for entry in entries:
            fields: dict[str, Any] = {}
            if entry.description is not None:
                fields["description"] = entry.description
            if entry.availability is not None:
                fields["availability"] = entry.availability
            menus[entry.name] = self.merge(
                "menus", existing.get(entry.name), partial(Menu, name=entry.name, **fields),
                fields, new, changed,
            )  # fmt: skip
        _number(new, top, None)
        _save(Menu, new, changed, ["description", "availability"])

        matched = list(existing.values())
        categories = _oldest_by(
            Category.objects.filter(menu__in=matched).order_by("id"),
            lambda c: (c.menu_id, c.name),
        )
        tops = _tops(Category.objects.filter(menu__in=matched), "menu_id")
        new_categories: list[Category] = []
        placements: dict[str, list[Category]] = {}
        for entry in entries:
            menu = menus[entry.name]
            for category_entry in entry.categories:
                category = self.merge(
                    "categories", categories.get((menu.pk, category_entry.name)),
                    partial(Category, menu=menu, name=category_entry.name),
                    {}, new_categories, [],
                )  # fmt: skip
                for item in category_entry.items:
                    placements.setdefault(item.name, []).append(category)
        _number(new_categories, tops, "menu_id")
        _save(Category, new_categories, [], [])
        return placements

    def items(self, groups: dict[str, Group], categories: dict[str, list[Category]]) -> None:
        entries = list(_distinct_items(self.data))
        referenced = {name for entry in entries for name in entry.modifier_groups or []}
        drafted = _oldest_by(
            Group.objects.filter(name__in=referenced - set(groups)).order_by("id"),
            lambda g: g.name,
        )
        groups = {**drafted, **groups}
        for entry in entries:
            for n, name in enumerate(entry.modifier_groups or []):
                if name not in groups:
                    raise InvalidInput(
                        f"No modifier group '{name}' in the file or the draft.",
                        code="unknown_group",
                        attr=f"{entry.at}modifier_groups.{n}",
                    )

        existing = _oldest_by(
            Item.objects.filter(name__in=[i.name for i in entries]).order_by("id"),
            lambda i: i.name,
        )
        matched = list(existing.values())
        placed = set(
            CategoryItem.objects.filter(item__in=matched).values_list("item_id", "category_id")
        )
        linked = set(
            ItemModifierGroup.objects.filter(item__in=matched).values_list("item_id", "group_id")
        )
        new: list[Item] = []
        changed: list[Item] = []
        items: dict[str, Item] = {}
        for entry in entries:
            fields: dict[str, Any] = {"price": entry.price}
            if entry.description is not None:
                fields["description"] = entry.description
            if entry.dietary_tags is not None:
                fields["dietary_tags"] = entry.dietary_tags
            item = existing.get(entry.name)
            if item is None:
                item = Item(**{"name": entry.name, "description": "", "dietary_tags": [], **fields})
                new.append(item)
                outcome = "created"
            else:
                differs = _assign(item, fields)
                if differs:
                    changed.append(item)
                # A new modifier group for the item is an update of it too.
                new_link = any(
                    (item.pk, groups[name].pk) not in linked for name in entry.modifier_groups or []
                )
                outcome = "updated" if differs or new_link else "unchanged"
            self.counts[outcome]["items"] += 1
            items[entry.name] = item
        _save(Item, new, changed, ["price", "description", "dietary_tags"])

        self.link(entries, items, categories, groups, placed, linked)

    def link(
        self,
        entries: list[ItemEntry],
        items: dict[str, Item],
        categories: dict[str, list[Category]],
        groups: dict[str, Group],
        placed: set[tuple[int, int]],
        linked: set[tuple[int, int]],
    ) -> None:
        """Place items in their categories and give them their groups; keep what is there."""
        category_ids = {category.pk for placed_in in categories.values() for category in placed_in}
        category_tops = _tops(CategoryItem.objects.filter(category__in=category_ids), "category_id")
        item_ids = [item.pk for item in items.values()]
        link_tops = _tops(ItemModifierGroup.objects.filter(item__in=item_ids), "item_id")
        new_places: list[CategoryItem] = []
        new_links: list[ItemModifierGroup] = []
        for entry in entries:
            item = items[entry.name]
            for category in categories[entry.name]:
                if (item.pk, category.pk) in placed:
                    self.counts["unchanged"]["placements"] += 1
                    continue
                new_places.append(CategoryItem(category=category, item=item))
                self.counts["created"]["placements"] += 1
            for name in entry.modifier_groups or []:
                group = groups[name]
                if (item.pk, group.pk) not in linked:
                    new_links.append(ItemModifierGroup(item=item, group=group))
        _number(new_places, category_tops, "category_id")
        _number(new_links, link_tops, "item_id")
        _save(CategoryItem, new_places, [], [])
        _save(ItemModifierGroup, new_links, [], [])


def _assign(obj: Any, fields: dict[str, Any]) -> bool:
    """Set the fields that differ; whether any did."""
    differing = {name: value for name, value in fields.items() if getattr(obj, name) != value}
    for name, value in differing.items():
        setattr(obj, name, value)
    return bool(differing)


def _save(model: Any, new: list[Any], changed: list[Any], fields: list[str]) -> None:
    """Insert the new rows and write the changed fields of the others (stamping updated_at)."""
    if new:
        model.objects.bulk_create(new, batch_size=BATCH)
    if changed:
        stamped = [f.name for f in model._meta.concrete_fields if getattr(f, "auto_now", False)]
        now = timezone.now()
        for obj in changed:
            for name in stamped:
                setattr(obj, name, now)
        model.objects.bulk_update(changed, [*fields, *stamped], batch_size=BATCH)


def _distinct_items(data: ImportData) -> Iterator[ItemEntry]:
    """Each item once, as its first entry (which holds the merged fields)."""
    seen: set[str] = set()
    for menu in data.menus:
        for category in menu.categories:
            for entry in category.items:
                if entry.name not in seen:
                    seen.add(entry.name)
                    yield entry


@transaction.atomic
def import_menu(*, actor: Actor, data: ImportData, dry_run: bool) -> dict[str, Any]:
    """Merge the file into the draft. A dry run does exactly the same work, then rolls it
    back, so it reports the same numbers and finds the same problems as the real run."""
    actor.require(Scope.MENUS_WRITE)
    # One import per restaurant at a time, so two imports of the same file cannot both
    # create the same menu.
    locks.lock_for_transaction(locks.MENU_IMPORT, current_restaurant().pk)
    with transaction.atomic():
        counts = _Import(data).run()
        if dry_run:
            transaction.set_rollback(True)
    if not dry_run:
        audit.record(
            registry.MENU_IMPORTED,
            actor=actor,
            target_type="menus.import",
            target_label=data.filename,
            changes={
                outcome: {"before": None, "after": {k: n for k, n in counts[outcome].items() if n}}
                for outcome in ("created", "updated")
            },
        )
    return {"dry_run": dry_run, **counts}
