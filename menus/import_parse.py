"""Menu import, reading: a JSON or CSV file turned into :class:`ImportData`, or InvalidInput
naming the first problem and where in the file it is. :mod:`menus.import_merge` applies it.

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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

from menus import services
from nordkestrel import money, safejson
from nordkestrel.errors import InvalidInput
from nordkestrel.text import storable

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000  # CSV data rows; in JSON, menus + categories + item entries + groups + modifiers
MAX_PRICE = 10_000_000  # the API's bound for one price, in minor units
MAX_SELECTIONS = 50
FILE_ATTR = "file"
CSV_REQUIRED = ("menu", "category", "item", "price")
CSV_OPTIONAL = ("description", "dietary_tags")

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
