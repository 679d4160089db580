"""Menu import: a JSON or CSV file merged into the draft by natural keys, never deleting.

Natural keys: a menu's name; a category's name within its menu; an item's name (an item is
shared by every category it sits in); a modifier group's name; a modifier's name within its
group. Names match exactly (after trimming spaces); where the draft already holds two rows
with one key, the oldest is the match. Matched rows get the fields the file changes, the rest
is created, nothing is removed, so importing the same file twice changes nothing the second
time. The import is one service (scope menus:write, one transaction, one audit event); it
validates with the draft services' validators and writes in bulk.

CSV prices: a whole number is minor units ("1250" is 12.50 EUR); a number with a decimal
point is major units, converted with the currency's exponent from nordkestrel.money (0 for JPY,
KRW and the other currencies without minor units, 2 for the rest): "12.50" is 1250 in EUR
and refused in JPY, where "1250" and "1250.00" both mean ¥1250.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NoReturn

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit import registry
from audit import services as audit
from menus import services
from menus.models import Category, CategoryItem, Item, ItemModifierGroup, Menu, Modifier
from menus.models import ModifierGroup as Group
from nordkestrel import locks, money, safejson
from nordkestrel.errors import InvalidInput
from nordkestrel.text import storable
from staff.auth import Actor
from staff.roles import Scope
from tenants.context import current_restaurant

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000  # CSV data rows; in JSON, menus + categories + item entries + groups + modifiers
MAX_PRICE = 10_000_000  # the API's bound for one price, in minor units
MAX_SELECTIONS = 50
FILE_ATTR = "file"
CSV_REQUIRED = ("menu", "category", "item", "price")
CSV_OPTIONAL = ("description", "dietary_tags")
KINDS = ("menus", "categories", "items", "modifier_groups", "modifiers", "placements")
BATCH = 1000  # rows per INSERT / UPDATE statement

# --- What a file says ------------------------------------------------------------------------
# Optional fields are None when the file does not give them: the draft keeps its value.
# ``at`` prefixes a field's name to say where the file gave it ("row 12: " or
# "menus.0.categories.1.items.3.").


@dataclass
class ItemEntry:
    name: str
    price: int
    at: str
    description: str | None = None
    dietary_tags: list[str] | None = None
    modifier_groups: list[str] | None = None


@dataclass
class CategoryEntry:
    name: str
    at: str
    items: list[ItemEntry] = field(default_factory=list)


@dataclass
class MenuEntry:
    name: str
    at: str
    description: str | None = None
    availability: list[dict[str, Any]] | None = None
    categories: list[CategoryEntry] = field(default_factory=list)


@dataclass
class ModifierEntry:
    name: str
    price_delta: int
    at: str


@dataclass
class GroupEntry:
    name: str
    min_selections: int
    max_selections: int
    required: bool
    at: str
    modifiers: list[ModifierEntry] = field(default_factory=list)


@dataclass
class ImportData:
    filename: str
    menus: list[MenuEntry]
    modifier_groups: list[GroupEntry] = field(default_factory=list)


def _fail(detail: str, attr: str, code: str = "invalid") -> NoReturn:
    raise InvalidInput(detail, code=code, attr=attr)


@contextmanager
def _located(at: str) -> Iterator[None]:
    """Errors a shared validator raises with a bare field name, placed in the file."""
    try:
        yield
    except InvalidInput as error:
        raise InvalidInput(error.detail, code=error.code, attr=f"{at}{error.attr or ''}") from None


def _name(value: Any, attr: str, max_length: int) -> str:
    if (
        not isinstance(value, str)
        or not storable(value)
        or not 0 < len(value.strip()) <= max_length
    ):
        _fail(f"A name of 1 to {max_length} characters.", attr)
    return value.strip()


def _text(value: Any, attr: str, max_length: int) -> str:
    if not isinstance(value, str) or not storable(value) or len(value.strip()) > max_length:
        _fail(f"Text of at most {max_length} characters.", attr)
    return value.strip()


def _whole(value: Any, attr: str, low: int, high: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        _fail(f"{what} is a whole number from {low} to {high}.", attr)
    return value


def _tags(value: Any, at: str) -> list[str]:
    with _located(at):
        return services.validate_tags(value)


def _unique(names: Iterable[tuple[str, str]], what: str) -> None:
    """(name, attr) pairs: a name given twice is ambiguous, so the file is refused."""
    seen: set[str] = set()
    for name, attr in names:
        if name in seen:
            _fail(f"The {what} '{name}' appears twice here.", attr, "duplicate")
        seen.add(name)


# --- Reading the file ------------------------------------------------------------------------


def parse_file(*, name: str, content: bytes, currency: str) -> ImportData:
    """The file's menus, or InvalidInput naming the first problem and where it is."""
    if len(content) > MAX_BYTES:
        _fail(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.", FILE_ATTR, "too_large")
    filename = os.path.basename(name or "")[:200]
    extension = os.path.splitext(filename.lower())[1]
    sniffed = content.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not sniffed:
        _fail("The file is empty.", FILE_ATTR, "empty")
    is_json = extension == ".json" or (extension != ".csv" and sniffed.startswith(b"{"))
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = ""
    if not text or "\x00" in text:
        _fail("Upload a JSON or CSV file (UTF-8 text).", FILE_ATTR, "unsupported_format")
    if is_json:
        data = _parse_json(text)
    elif extension == ".csv" or "," in text.partition("\n")[0]:
        data = _parse_csv(text, currency)
    else:
        _fail("Upload a JSON or CSV file.", FILE_ATTR, "unsupported_format")
    data.filename = filename
    _merge_items(data)
    return data


def _object(value: Any, at: str, required: set[str], optional: set[str]) -> dict[str, Any]:
    where = at.rstrip(".") or FILE_ATTR
    if not isinstance(value, dict):
        _fail("Expected an object.", where)
    for key in sorted(set(value) - required - optional):
        _fail("This field cannot be set.", f"{at}{key}", "unknown_field")
    for key in sorted(required - set(value)):
        _fail("This field is required.", f"{at}{key}", "required")
    return value


def _list(value: Any, attr: str) -> list[Any]:
    if not isinstance(value, list):
        _fail("Expected a list.", attr)
    return value


def _parse_json(text: str) -> ImportData:
    try:
        document = safejson.loads(text, max_bytes=MAX_BYTES)
    except safejson.JSONTooDeep as refused:
        _fail(refused.detail, FILE_ATTR, "too_deep")
    except safejson.JSONRefused:
        _fail("The file is not valid JSON.", FILE_ATTR, "invalid_json")
    root = _object(document, "", {"menus"}, {"modifier_groups"})
    menus = [_json_menu(raw, f"menus.{n}.") for n, raw in enumerate(_list(root["menus"], "menus"))]
    groups = [
        _json_group(raw, f"modifier_groups.{n}.")
        for n, raw in enumerate(_list(root.get("modifier_groups", []), "modifier_groups"))
    ]
    _unique(((m.name, f"{m.at}name") for m in menus), "menu")
    _unique(((g.name, f"{g.at}name") for g in groups), "modifier group")
    entries = sum(1 + sum(1 + len(c.items) for c in m.categories) for m in menus) + sum(
        1 + len(g.modifiers) for g in groups
    )
    if entries > MAX_ROWS:
        _fail(f"At most {MAX_ROWS} entries per file.", FILE_ATTR, "too_many_rows")
    return ImportData(filename="", menus=menus, modifier_groups=groups)


def _json_menu(raw: Any, at: str) -> MenuEntry:
    raw = _object(raw, at, {"name", "categories"}, {"description", "availability"})
    menu = MenuEntry(name=_name(raw["name"], f"{at}name", 80), at=at)
    if "description" in raw:
        menu.description = _text(raw["description"], f"{at}description", 500)
    if "availability" in raw:
        with _located(at):
            menu.availability = services.validate_availability(raw["availability"])
    for n, raw_category in enumerate(_list(raw["categories"], f"{at}categories")):
        where = f"{at}categories.{n}."
        raw_category = _object(raw_category, where, {"name", "items"}, set())
        category = CategoryEntry(name=_name(raw_category["name"], f"{where}name", 80), at=where)
        for i, raw_item in enumerate(_list(raw_category["items"], f"{where}items")):
            category.items.append(_json_item(raw_item, f"{where}items.{i}."))
        _unique(((item.name, f"{item.at}name") for item in category.items), "item")
        menu.categories.append(category)
    _unique(((c.name, f"{c.at}name") for c in menu.categories), "category")
    return menu


def _json_item(raw: Any, at: str) -> ItemEntry:
    raw = _object(raw, at, {"name", "price"}, {"description", "dietary_tags", "modifier_groups"})
    item = ItemEntry(
        name=_name(raw["name"], f"{at}name", 120),
        price=_whole(raw["price"], f"{at}price", 0, MAX_PRICE, "A price in minor units"),
        at=at,
    )
    if "description" in raw:
        item.description = _text(raw["description"], f"{at}description", 1000)
    if "dietary_tags" in raw:
        item.dietary_tags = _tags(raw["dietary_tags"], at)
    if "modifier_groups" in raw:
        names = _list(raw["modifier_groups"], f"{at}modifier_groups")
        item.modifier_groups = [
            _name(group, f"{at}modifier_groups.{n}", 80) for n, group in enumerate(names)
        ]
        _unique(
            ((g, f"{at}modifier_groups.{n}") for n, g in enumerate(item.modifier_groups)),
            "modifier group",
        )
    return item


def _json_group(raw: Any, at: str) -> GroupEntry:
    fields = {"name", "min_selections", "max_selections", "required", "modifiers"}
    raw = _object(raw, at, fields, set())
    low = _whole(raw["min_selections"], f"{at}min_selections", 0, MAX_SELECTIONS, "A minimum")
    high = _whole(raw["max_selections"], f"{at}max_selections", 1, MAX_SELECTIONS, "A maximum")
    if not isinstance(raw["required"], bool):
        _fail("Required is true or false.", f"{at}required")
    if low > high:
        _fail("The minimum cannot exceed the maximum.", f"{at}min_selections")
    group = GroupEntry(
        name=_name(raw["name"], f"{at}name", 80),
        # As services.group_save stores it, so that a second import finds nothing to change.
        min_selections=max(low, 1) if raw["required"] else low,
        max_selections=high,
        required=raw["required"],
        at=at,
    )
    for n, raw_modifier in enumerate(_list(raw["modifiers"], f"{at}modifiers")):
        where = f"{at}modifiers.{n}."
        raw_modifier = _object(raw_modifier, where, {"name", "price_delta"}, set())
        name = _name(raw_modifier["name"], f"{where}name", 80)
        delta = raw_modifier["price_delta"]
        what = "A price change in minor units"
        delta = _whole(delta, f"{where}price_delta", -MAX_PRICE, MAX_PRICE, what)
        group.modifiers.append(ModifierEntry(name=name, price_delta=delta, at=where))
    _unique(((m.name, f"{m.at}name") for m in group.modifiers), "modifier")
    return group


def _parse_csv(text: str, currency: str) -> ImportData:
    reader = csv.reader(io.StringIO(text, newline=""))
    columns: list[str] | None = None
    menus: dict[str, MenuEntry] = {}
    categories: dict[tuple[str, str], CategoryEntry] = {}
    placed: set[tuple[str, str, str]] = set()
    count = 0
    try:
        for cells in reader:
            row = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if columns is None:
                columns = _csv_header(cells, row)
                continue
            count += 1
            if count > MAX_ROWS:
                _fail(f"At most {MAX_ROWS} rows per file.", FILE_ATTR, "too_many_rows")
            if len(cells) != len(columns):
                _fail(f"Expected {len(columns)} cells, found {len(cells)}.", f"row {row}")
            values = dict(zip(columns, cells, strict=True))
            at = f"row {row}: "
            menu_name = _name(values["menu"], f"{at}menu", 80)
            category_name = _name(values["category"], f"{at}category", 80)
            item = ItemEntry(
                name=_name(values["item"], f"{at}item", 120),
                price=_csv_price(values["price"], currency, f"{at}price"),
                at=at,
            )
            if "description" in values:
                item.description = _text(values["description"], f"{at}description", 1000)
            if "dietary_tags" in values:
                tags = [tag.strip() for tag in values["dietary_tags"].split("|")]
                item.dietary_tags = _tags([tag for tag in tags if tag], at)
            if (menu_name, category_name, item.name) in placed:
                _fail(f"'{item.name}' is already in this category.", f"{at}item", "duplicate")
            placed.add((menu_name, category_name, item.name))
            menu = menus.setdefault(menu_name, MenuEntry(name=menu_name, at=at))
            category = categories.get((menu_name, category_name))
            if category is None:
                category = categories[(menu_name, category_name)] = CategoryEntry(
                    name=category_name, at=at
                )
                menu.categories.append(category)
            category.items.append(item)
    except csv.Error as error:
        _fail(f"The CSV cannot be read: {error}.", f"row {reader.line_num}", "invalid_csv")
    if columns is None:
        _fail("The file is empty.", FILE_ATTR, "empty")
    return ImportData(filename="", menus=list(menus.values()))


def _csv_header(cells: list[str], row: int) -> list[str]:
    columns = [cell.strip().lower() for cell in cells]
    known = (*CSV_REQUIRED, *CSV_OPTIONAL)
    for column in columns:
        if column not in known:
            _fail(f"Unknown column; the columns are {', '.join(known)}.", f"row {row}: {column}")
    _unique(((column, f"row {row}: {column}") for column in columns), "column")
    for column in CSV_REQUIRED:
        if column not in columns:
            _fail("This column is missing.", f"row {row}: {column}", "missing_column")
    return columns


def _csv_price(text: str, currency: str, attr: str) -> int:
    value = text.strip()
    if re.fullmatch(r"\d{1,9}", value):
        minor = int(value)
    elif re.fullmatch(r"\d{1,9}\.\d{1,9}", value):
        try:
            minor = money.to_minor(value, currency)
        except ValueError as error:
            _fail(f"{error} ({currency})", attr)
    else:
        _fail("A price is zero or more: minor units (1250) or an amount (12.50).", attr)
    if minor > MAX_PRICE:
        _fail(f"A price is at most {MAX_PRICE} minor units.", attr)
    return minor


def _merge_items(data: ImportData) -> None:
    """An item named in several categories is one item: its entries must agree."""
    first: dict[str, ItemEntry] = {}
    for menu in data.menus:
        for category in menu.categories:
            for entry in category.items:
                seen = first.setdefault(entry.name, entry)
                for name in ("price", "description", "dietary_tags", "modifier_groups"):
                    mine, theirs = getattr(entry, name), getattr(seen, name)
                    if mine is not None and theirs is not None and mine != theirs:
                        _fail(
                            f"'{entry.name}' appears more than once with different {name}.",
                            f"{entry.at}{name}",
                            "conflict",
                        )
                    if theirs is None:
                        setattr(seen, name, mine)


# --- Applying it -----------------------------------------------------------------------------
# In bulk: a few queries per kind of row, however long the file (one service call per row
# took over 30 seconds for 5000 rows). The rules the services enforce were checked above,
# with the same validators; positions follow the services' rule (after the last one).


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
                    _fail(
                        f"No modifier group '{name}' in the file or the draft.",
                        f"{entry.at}modifier_groups.{n}",
                        "unknown_group",
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
