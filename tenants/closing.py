"""A restaurant pending deletion is read-only: what the request chain checks before any write.

The request to delete closes the restaurant at once (restaurants/deletion.py); until the purge,
the staff API and the dashboard refuse every change except what a view allows while closing
(exports, the cancel), in the one chain both share (staff/access.py).
"""

from __future__ import annotations

from nordkestrel.errors import ConflictError
from tenants.models import Restaurant

CLOSING_CODE = "restaurant_pending_deletion"


def is_closing(restaurant: Restaurant) -> bool:
    return restaurant.status == Restaurant.Status.PENDING_DELETION


def closing_detail(restaurant: Restaurant) -> str:
    when = (
        f" on {restaurant.purge_after.astimezone(restaurant.zone):%Y-%m-%d %H:%M %Z}"
        if restaurant.purge_after
        else ""
    )
    return (
        f"This restaurant is being deleted (its data is purged{when}): nothing can be changed "
        "except exports. The Owner can cancel the deletion until then."
    )


class RestaurantClosing(ConflictError):
    """A change to a restaurant that is pending deletion (only exports and cancel remain)."""

    code = CLOSING_CODE

    def __init__(self, restaurant: Restaurant) -> None:
        super().__init__(closing_detail(restaurant))
