"""Account deletion: the Owner's request, its cancellation during the grace period, and the
read-only mode in between.

The request closes the restaurant at once (``pending_deletion``): its storefront stops
answering, the staff API and the dashboard refuse every change except exports and the
cancellation (``tenants.closing``, checked in ``staff.access``), and webhooks still record
what Stripe sends. After ``ACCOUNT_DELETION_GRACE_DAYS`` the purge job (restaurants/purge.py)
deletes its data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import registry
from audit import services as audit
from nordkestrel.errors import ConflictError, InvalidInput
from staff.auth import Actor
from staff.roles import Scope
from tenants.closing import is_closing
from tenants.models import Restaurant
from tenants.selectors import forget_storefront_host

# The security page promises a purge within 30 days of the request.
MAX_GRACE_DAYS = 30
MIN_GRACE_DAYS = 1


def grace_days() -> int:
    """The grace period in days, held within 1..30 whatever the settings say."""
    days = int(settings.ACCOUNT_DELETION_GRACE_DAYS)
    return max(MIN_GRACE_DAYS, min(MAX_GRACE_DAYS, days))


@dataclass(frozen=True)
class DeletionStatus:
    pending: bool
    requested_at: datetime | None
    purge_after: datetime | None
    # False once the purge has begun: from then on it runs to the end.
    can_cancel: bool
    grace_days: int


def deletion_status(restaurant: Restaurant) -> DeletionStatus:
    pending = is_closing(restaurant)
    return DeletionStatus(
        pending=pending,
        requested_at=restaurant.deletion_requested_at if pending else None,
        purge_after=restaurant.purge_after if pending else None,
        can_cancel=pending and restaurant.purge_started_at is None,
        grace_days=grace_days(),
    )


def _locked(actor: Actor) -> Restaurant:
    return Restaurant.objects.locked(actor.restaurant.pk)


def _refresh(actor: Actor, restaurant: Restaurant) -> None:
    """The request's own restaurant object shows the new state too (pages render it)."""
    for field in ("status", "deletion_requested_at", "purge_after", "purge_started_at"):
        setattr(actor.restaurant, field, getattr(restaurant, field))


@transaction.atomic
def restaurant_deletion_request(
    *, actor: Actor, confirm_name: str, now: datetime | None = None
) -> Restaurant:
    """Close the restaurant now and schedule its purge after the grace period."""
    actor.require(Scope.RESTAURANT_DELETE)
    restaurant = _locked(actor)
    if restaurant.status == Restaurant.Status.PENDING_DELETION:
        raise ConflictError(
            "The deletion of this restaurant is already scheduled.", code="deletion_pending"
        )
    if restaurant.status != Restaurant.Status.ACTIVE:
        raise ConflictError("This restaurant cannot be deleted now.", code="restaurant_inactive")
    if not isinstance(confirm_name, str) or confirm_name.strip() != restaurant.name.strip():
        raise InvalidInput(
            "Type the restaurant's name exactly as it is to confirm the deletion.",
            code="name_mismatch",
            attr="confirm_name",
        )
    now = now or timezone.now()
    before = {"status": restaurant.status, "purge_after": None}
    restaurant.status = Restaurant.Status.PENDING_DELETION
    restaurant.deletion_requested_at = now
    restaurant.purge_after = now + timedelta(days=grace_days())
    restaurant.purge_started_at = None
    restaurant.save(
        update_fields=[
            "status",
            "deletion_requested_at",
            "purge_after",
            "purge_started_at",
            "updated_at",
        ]
    )
    audit.record(
        registry.RESTAURANT_DELETION_REQUESTED,
        actor=actor,
        target=restaurant,
        changes=audit.diff(
            before, {"status": restaurant.status, "purge_after": restaurant.purge_after}
        ),
    )
    _refresh(actor, restaurant)
    slug = restaurant.slug
    # The storefront's host lookup is cached: it stops answering as soon as this commits.
    transaction.on_commit(lambda: forget_storefront_host(slug))
    return restaurant


@transaction.atomic
def restaurant_deletion_cancel(*, actor: Actor) -> Restaurant:
    """Reopen a restaurant pending deletion, as long as its purge has not begun."""
    actor.require(Scope.RESTAURANT_DELETE)
    restaurant = _locked(actor)
    if restaurant.status != Restaurant.Status.PENDING_DELETION:
        raise ConflictError(
            "This restaurant is not scheduled for deletion.", code="deletion_not_pending"
        )
    if restaurant.purge_started_at is not None:
        raise ConflictError(
            "The purge of this restaurant's data has begun; it can no longer be cancelled.",
            code="purge_started",
        )
    before = {"status": restaurant.status, "purge_after": restaurant.purge_after}
    restaurant.status = Restaurant.Status.ACTIVE
    restaurant.deletion_requested_at = None
    restaurant.purge_after = None
    restaurant.save(update_fields=["status", "deletion_requested_at", "purge_after", "updated_at"])
    audit.record(
        registry.RESTAURANT_DELETION_CANCELLED,
        actor=actor,
        target=restaurant,
        changes=audit.diff(before, {"status": restaurant.status, "purge_after": None}),
    )
    _refresh(actor, restaurant)
    slug = restaurant.slug
    transaction.on_commit(lambda: forget_storefront_host(slug))
    return restaurant
