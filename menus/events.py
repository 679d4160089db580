"""The menu events in the catalogue."""

from __future__ import annotations

from datetime import datetime

from menus.models import Item, MenuVersion, Modifier
from nordkestrel import events
from nordkestrel.events import BOOLEAN, ID, MINOR_UNITS, TEXT, TIMESTAMP, enum, obj, timestamp
from staff.roles import Scope

MENU_PUBLISHED = events.register(
    events.EventType(
        name="menu.published",
        version=1,
        scope=Scope.MENUS_READ,
        schema=obj(
            version=obj(
                id=ID,
                number=ID,
                published_at=TIMESTAMP,
                content_hash=TEXT,
                # The version put live again by a rollback; null for a publish.
                rolled_back_from={"type": ["integer", "null"], "minimum": 1},
                items=MINOR_UNITS,
            ),
            published_by_id={"type": ["integer", "null"]},
        ),
        description="A new menu version went live: published, or an earlier one rolled back to.",
    )
)
ITEM_SOLD_OUT_CHANGED = events.register(
    events.EventType(
        name="item.sold_out_changed",
        version=1,
        scope=Scope.MENUS_READ,
        schema=obj(
            kind=enum("item", "modifier"),
            id=ID,
            name=TEXT,
            sold_out=BOOLEAN,
            changed_at=TIMESTAMP,
        ),
        description="An item or a modifier was marked sold out, or back in stock.",
    )
)


def published(version: MenuVersion) -> events.Event:
    return MENU_PUBLISHED.new(
        restaurant_id=version.restaurant_id,
        occurred_at=version.published_at,
        payload={
            "version": {
                "id": version.pk,
                "number": version.number,
                "published_at": timestamp(version.published_at),
                "content_hash": version.content_hash,
                "rolled_back_from": version.rolled_back_from,
                "items": len(version.document.get("items", {})),
            },
            "published_by_id": version.published_by_id,
        },
    )


def sold_out_changed(obj: Item | Modifier, *, at: datetime) -> events.Event:
    return ITEM_SOLD_OUT_CHANGED.new(
        restaurant_id=obj.restaurant_id,
        occurred_at=at,
        payload={
            "kind": "item" if isinstance(obj, Item) else "modifier",
            "id": obj.pk,
            "name": obj.name,
            "sold_out": obj.sold_out,
            "changed_at": timestamp(at),
        },
    )
