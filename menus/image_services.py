"""Setting an item's image and the restaurant's logo.

The new file is stored before the row changes; if the change fails, the new file is deleted
again, and the file it replaced is deleted only once the change has committed, so a
rollback never leaves a row pointing at a deleted file. An item image that a duplicated item
or a published menu version still shows is kept: deleting it would break the live storefront
(which shows the published version until the next publish) and any later rollback.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django.core.files.base import File
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from audit import registry
from audit import services as audit
from menus import images
from menus.models import Item, MenuVersion
from staff.auth import Actor
from staff.roles import Scope
from tenants.models import Restaurant


def _replace_image(
    *, restaurant_id: int, kind: str, upload: File, swap: Callable[[str], str]
) -> str:
    """Process and store ``upload``; ``swap(key)`` saves it and returns the key to delete."""
    processed = images.process_image(upload)
    key = images.store_image(restaurant_id, processed, kind)
    try:
        previous = swap(key)
    except Exception:
        images.delete_image(restaurant_id, kind, key)
        raise
    if previous and previous != key:
        transaction.on_commit(partial(images.delete_image, restaurant_id, kind, previous))
    return key


def _item_image_in_use(key: str) -> bool:
    """Whether another item or any published version of the menu shows ``key``."""
    if Item.objects.filter(image=key).exists():
        return True
    # Keys are URL-safe, so they appear verbatim in the document's JSON text.
    versions = MenuVersion.objects.annotate(text=Cast("document", TextField()))
    return versions.filter(text__contains=f'"{key}"').exists()


@transaction.atomic
def item_set_image(*, actor: Actor, item: Item, upload: File) -> Item:
    actor.require(Scope.MENUS_WRITE)
    saved = item

    def swap(key: str) -> str:
        nonlocal saved
        # Locked, so two uploads at once each delete exactly the file they replaced.
        saved = Item.objects.select_for_update(no_key=True).get(pk=item.pk)
        previous = saved.image
        saved.image = key
        saved.save(update_fields=["image", "updated_at"])
        return "" if not previous or _item_image_in_use(previous) else previous

    _replace_image(restaurant_id=actor.restaurant.pk, kind=images.ITEMS, upload=upload, swap=swap)
    return saved


@transaction.atomic
def restaurant_set_logo(*, actor: Actor, upload: File) -> Restaurant:
    actor.require(Scope.RESTAURANT_WRITE)
    restaurant = actor.restaurant

    def swap(key: str) -> str:
        nonlocal restaurant
        restaurant = Restaurant.objects.locked(actor.restaurant.pk)
        previous = restaurant.logo
        restaurant.logo = key
        restaurant.save(update_fields=["logo", "updated_at"])
        audit.record(
            registry.RESTAURANT_SETTINGS_CHANGED,
            actor=actor,
            target=restaurant,
            changes=audit.diff({"logo": previous}, {"logo": key}),
        )
        return previous

    key = _replace_image(
        restaurant_id=actor.restaurant.pk, kind=images.LOGOS, upload=upload, swap=swap
    )
    # The request's own copy of the restaurant shows the new logo too.
    actor.restaurant.logo = key
    return restaurant
