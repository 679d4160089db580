"""The storefront's menu read: the live document plus the sold-out overlay, from one row.

Writes (publish, rollback, 86) update StorefrontMenuState and, once committed, the shared
revision key. Reads compare that small key with what this process holds in memory: a warm
read is one cache lookup and no query; a cold one reads one row (public-read policy).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from menus.models import Item, MenuVersion, Modifier, StorefrontMenuState
from nordkestrel import locks
from tenants.context import current_restaurant
from tenants.models import Restaurant


def _revision_key(restaurant_id: int) -> str:
    return f"storefront:menu-revision:{restaurant_id}"


def lock() -> None:
    """Publishes and rollbacks of one restaurant queue up (a job lock, taken first)."""
    locks.lock_for_transaction(locks.MENU_PUBLISH, current_restaurant().pk)


def _state() -> StorefrontMenuState:
    state, _ = StorefrontMenuState.objects.select_for_update(no_key=True).get_or_create(
        restaurant=current_restaurant()
    )
    return state


def _announce(state: StorefrontMenuState) -> None:
    revision = f"{state.live_version_id}:{state.overlay_revision}"
    restaurant_id = state.restaurant_id

    def announce() -> None:
        cache.set(_revision_key(restaurant_id), revision, REVISION_TTL_SECONDS)
        _checked.pop(restaurant_id, None)  # this process sees its own change at once

    transaction.on_commit(announce)


def _sold_out_lists(state: StorefrontMenuState) -> None:
    state.sold_out_items = sorted(Item.objects.filter(sold_out=True).values_list("pk", flat=True))
    state.sold_out_modifiers = sorted(
        Modifier.objects.filter(sold_out=True).values_list("pk", flat=True)
    )


def go_live(version: MenuVersion, serialized: str) -> None:
    state = _state()
    state.live_version = version
    state.live_number = version.number
    state.document_json = serialized
    state.content_hash = version.content_hash
    _sold_out_lists(state)
    state.overlay_revision += 1
    state.save()
    _announce(state)


def refresh_overlay() -> None:
    state = _state()
    _sold_out_lists(state)
    state.overlay_revision += 1
    state.save()
    _announce(state)


# --- Reading ---------------------------------------------------------------------------------


@dataclass
class _Payload:
    revision: str
    version: int
    zone: Any
    menus: list[tuple[list[dict[str, Any]], bytes]]  # (availability, serialized menu)
    rest: bytes  # ,"items":...,"modifier_groups":...,"restaurant":...,"sold_out":...
    bodies: dict[tuple[int, ...], tuple[str, bytes]] = field(default_factory=dict)


_local: dict[int, _Payload] = {}
_local_lock = threading.Lock()
# Each process asks the shared cache for a restaurant's live revision at most once a second:
# other processes see a publish or an 86 within that bound (diners' caches may keep a
# response 30 s anyway), and a warm read costs no cache round trip.
REVISION_CHECK_SECONDS = 1.0
# The shared revision expires, so a lost update (a cache outage at commit) heals itself.
REVISION_TTL_SECONDS = 300
_checked: dict[int, float] = {}  # restaurant id -> time.monotonic() of the last check


def _load(restaurant_id: int) -> _Payload | None:
    row = (
        StorefrontMenuState.unscoped.filter(restaurant_id=restaurant_id, live_version__isnull=False)
        .values_list(
            "live_version_id", "overlay_revision", "document_json", "sold_out_items",
            "sold_out_modifiers", "live_number",
        )
        .first()
    )  # fmt: skip
    if row is None:
        return None
    version_id, overlay, document_json, sold_items, sold_modifiers, number = row
    document = json.loads(document_json)
    dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    rest = (
        f',"items":{dumps(document["items"])}'
        f',"modifier_groups":{dumps(document["modifier_groups"])}'
        f',"restaurant":{dumps(document["restaurant"])}'
        f',"sold_out":{dumps({"items": sold_items, "modifiers": sold_modifiers})}'
    ).encode()
    return _Payload(
        revision=f"{version_id}:{overlay}",
        version=number,
        zone=ZoneInfo(document["restaurant"]["timezone"]),
        menus=[(menu["availability"], dumps(menu).encode()) for menu in document["menus"]],
        rest=rest,
    )


def _available(windows: list[dict[str, Any]], now: datetime) -> bool:
    if not windows:
        return True
    clock = now.strftime("%H:%M")
    today, yesterday = now.weekday(), (now.weekday() - 1) % 7
    for window in windows:
        start, end = window["start"], window["end"]
        if start < end:
            if today in window["weekdays"] and start <= clock < end:
                return True
        elif (today in window["weekdays"] and clock >= start) or (
            yesterday in window["weekdays"] and clock < end
        ):
            return True  # a window past midnight belongs to the day it starts
    return False


def storefront_menu(restaurant_id: int, now: datetime | None = None) -> tuple[str, bytes] | None:
    """(ETag, JSON body) of the menus available now, or None when nothing is published."""
    payload = _local.get(restaurant_id)
    clock = time.monotonic()
    last_check = _checked.get(restaurant_id)
    if payload is None or last_check is None or clock - last_check >= REVISION_CHECK_SECONDS:
        revision = cache.get(_revision_key(restaurant_id))
        if payload is None or revision is None or payload.revision != revision:
            payload = _load(restaurant_id)
            if payload is None:
                return None
            with _local_lock:
                _local[restaurant_id] = payload
            if revision is None:
                cache.add(_revision_key(restaurant_id), payload.revision, REVISION_TTL_SECONDS)
        _checked[restaurant_id] = clock
    local_now = (now or timezone.now()).astimezone(payload.zone)
    shown = tuple(
        i for i, (windows, _) in enumerate(payload.menus) if _available(windows, local_now)
    )
    cached = payload.bodies.get(shown)
    if cached is not None:
        return cached
    body = (
        b'{"version":' + str(payload.version).encode() + b',"menus":['
        + b",".join(payload.menus[i][1] for i in shown) + b"]" + payload.rest + b"}"
    )  # fmt: skip
    etag = (
        '"'
        + hashlib.sha256(payload.revision.encode() + repr(shown).encode()).hexdigest()[:32]
        + '"'
    )
    payload.bodies[shown] = (etag, body)
    return etag, body


# --- Pricing's view: the exact current state -----------------------------------------------


@dataclass(frozen=True)
class LiveMenu:
    version: int
    document: dict[str, Any]
    sold_out_items: frozenset[int]
    sold_out_modifiers: frozenset[int]
    # The restaurant's opening-hours revision, read in the same query, so checkout knows
    # without another query whether the schedule it keeps is current (tenants.hours).
    hours_revision: int | None = None

    def menus_available_at(self, moment: datetime) -> list[dict[str, Any]]:
        local = moment.astimezone(ZoneInfo(self.document["restaurant"]["timezone"]))
        return [menu for menu in self.document["menus"] if _available(menu["availability"], local)]

    def items_available_at(self, moment: datetime) -> set[int]:
        return {
            item_id
            for menu in self.menus_available_at(moment)
            for category in menu["categories"]
            for item_id in category["items"]
        }


_documents: dict[int, tuple[int, dict[str, Any]]] = {}  # restaurant -> (version id, document)


def live_menu(restaurant_id: int) -> LiveMenu | None:
    """The live version and sold-out state as committed now (one query; a second only when
    this process has not parsed that version yet). Checkout prices from this, not from the
    read path's once-a-second view."""
    row = (
        _live_states(restaurant_id)
        .values_list(
            "live_version_id", "live_number", "sold_out_items", "sold_out_modifiers",
            "restaurant__hours_revision",
        )
        .first()
    )  # fmt: skip
    return None if row is None else _live(restaurant_id, *row)


def active_restaurant_with_live_menu(
    restaurant_id: int,
) -> tuple[Restaurant, LiveMenu | None] | None:
    """The restaurant, if active, and its :func:`live_menu`, read together in one query. For
    the checkout, which needs both at once: written out in SQL because the ORM's version of
    this join cost it three times as much (the restaurant's forty columns and the join's
    compilation, every order)."""
    found = next(
        iter(
            Restaurant.objects.raw(
                ACTIVE_RESTAURANT_WITH_LIVE_MENU, [restaurant_id, Restaurant.Status.ACTIVE]
            )
        ),
        None,
    )
    if found is None:
        return None
    state: Any = found  # the menu's columns, beside the restaurant's
    if state.menu_version_id is None:
        return found, None
    # Extra columns of a raw query come as the database sends them: jsonb as text.
    menu = _live(
        restaurant_id, state.menu_version_id, state.menu_number,
        json.loads(state.menu_sold_out_items), json.loads(state.menu_sold_out_modifiers),
        found.hours_revision,
    )  # fmt: skip
    return found, menu


ACTIVE_RESTAURANT_WITH_LIVE_MENU = f"""
    SELECT r.*, s.live_version_id AS menu_version_id, s.live_number AS menu_number,
           s.sold_out_items AS menu_sold_out_items,
           s.sold_out_modifiers AS menu_sold_out_modifiers
      FROM {Restaurant._meta.db_table} r
      LEFT JOIN {StorefrontMenuState._meta.db_table} s
        ON s.restaurant_id = r.id AND s.live_version_id IS NOT NULL
     WHERE r.id = %s AND r.status = %s
"""  # noqa: S608 - table names are the models', every value a parameter


def _live_states(restaurant_id: int) -> QuerySet[StorefrontMenuState]:
    return StorefrontMenuState.unscoped.filter(
        restaurant_id=restaurant_id, live_version__isnull=False
    )


def _live(
    restaurant_id: int,
    version_id: int | None,
    number: int,
    sold_items: list[int],
    sold_modifiers: list[int],
    hours_revision: int,
) -> LiveMenu | None:
    cached = _documents.get(restaurant_id)
    if cached is None or cached[0] != version_id:
        document_json = _live_states(restaurant_id).values_list("document_json", flat=True).first()
        if document_json is None or version_id is None:
            return None
        cached = (version_id, json.loads(document_json))
        with _local_lock:
            _documents[restaurant_id] = cached
    return LiveMenu(
        version=number,
        document=cached[1],
        sold_out_items=frozenset(sold_items),
        sold_out_modifiers=frozenset(sold_modifiers),
        hours_revision=hours_revision,
    )
