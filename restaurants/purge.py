"""The account purge: after the grace period, every operational row and stored file of a
restaurant is deleted, and a small deletion record says what was purged and when.

A periodic job (:func:`purge_due_restaurants`) purges each restaurant whose ``purge_after``
has passed. One restaurant's purge:

1. begins: ``purge_started_at`` is set (the deletion can no longer be cancelled) and the
   :class:`~tenants.models.DeletionRecord` is written;
2. runs the registered steps that reach outside the database, once each (the payments app
   closes the Stripe account and forgets its webhook routing and events). A third party
   that is down does not hold the purge up: the step records what it could not do as
   pending, and a follow-up of the step retries that alone on later runs (step 6);
3. deletes the rows of every tenant model (found generically: every ``TenantModel`` whose
   ``purged_with_restaurant`` is true, which leaves out the audit log), children before
   parents, in batches of :data:`BATCH_SIZE` rows, one transaction each, the record's counts
   updated in the same transaction;
4. deletes the restaurant's stored files (``restaurants/<id>/`` in every file storage);
5. ends in one transaction: the restaurant becomes ``deleted`` (a tombstone the audit log
   still refers to: its events hold the restaurant by a PROTECT key and outlive it for their
   own 12 months), its contact details are cleared, the record is completed and
   ``restaurant.purged`` is audited;
6. later runs retry, alone, what a step left pending (:func:`follow_up_pending`: the Stripe
   account's closure while Stripe is down) until it is done. The data is gone on time
   whatever a third party does: the security page promises a purge within 30 days.

A purge interrupted anywhere (a crash, a deploy) leaves the restaurant ``pending_deletion``
with ``purge_started_at`` set; the next run picks it up and continues where it stopped, since
every step either is recorded as done or finds nothing left to do. Two runs never purge the
same restaurant at once (a session advisory lock per restaurant).
"""

from __future__ import annotations

import contextlib
import graphlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from django.apps import apps
from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db import connection, models, transaction
from django.utils import timezone

from audit import registry
from audit import services as audit
from nordkestrel import locks
from nordkestrel.dbrouting import current_connection
from tenants.context import tenant_bypass, tenant_context
from tenants.models import DeletionRecord, Restaurant, TenantModel
from tenants.selectors import forget_organization, forget_storefront_host

logger = logging.getLogger(__name__)

# Rows per statement (and per transaction): no restaurant, however large, holds one huge
# transaction or lock set.
BATCH_SIZE = 5000
# Storages that hold the project's own code assets, not restaurants' files.
STATIC_STORAGES = frozenset({"staticfiles"})
# Passes over the tables before giving up for this run (rows written while the purge ran,
# e.g. by a task that was already running, are caught by the next pass).
MAX_PASSES = 3

# Cleared on the tombstone: the business's contact details and its sign-in organization.
CLEARED_FIELDS = {
    "address_line1": "",
    "address_line2": "",
    "city": "",
    "postal_code": "",
    "phone": "",
    "logo": "",
    "clerk_organization_id": None,
    "require_mfa_for_sensitive_actions": False,
}


class PurgeIncomplete(RuntimeError):
    """Rows were still there after the last pass; the next run continues."""


class PurgeFailed(RuntimeError):
    """At least one restaurant's purge failed this run (each is retried on the next)."""


# --- Steps outside the database, registered by the apps that own them ----------------------

PurgeStep = Callable[[Restaurant], dict[str, Any]]
FollowUp = Callable[[dict[str, Any]], dict[str, Any]]
_steps: dict[str, PurgeStep] = {}
_follow_ups: dict[str, FollowUp] = {}
# The key of a step's outcome that lists what it left to do (present only while something is).
PENDING = DeletionRecord.PENDING


def register_step(name: str) -> Callable[[PurgeStep], PurgeStep]:
    """Register ``function(restaurant) -> outcome`` to run once per purge, before the rows go.

    A step is retried on the next run until it returns; its outcome (JSON, no personal data)
    is kept in the deletion record, which also marks it as done. A step whose third party is
    down returns anyway, listing what is left under ``PENDING`` in its outcome, for its
    follow-up (:func:`register_follow_up`): the purge never waits for a third party.
    """

    def decorate(function: PurgeStep) -> PurgeStep:
        if name in _steps:
            raise ValueError(f"Purge step {name!r} is already registered.")
        _steps[name] = function
        return function

    return decorate


def register_follow_up(name: str) -> Callable[[FollowUp], FollowUp]:
    """Register ``function(outcome) -> outcome`` to finish what step ``name`` left pending.

    It gets the step's recorded outcome (the restaurant's data may be gone by then: what it
    needs is in the outcome) and returns the new one, without ``PENDING`` once done; every
    run calls it again while ``PENDING`` is there.
    """

    def decorate(function: FollowUp) -> FollowUp:
        if name in _follow_ups:
            raise ValueError(f"Purge follow-up {name!r} is already registered.")
        _follow_ups[name] = function
        return function

    return decorate


# --- Which tables, in which order ---------------------------------------------------------


def _purged(model: type[models.Model]) -> bool:
    return (
        issubclass(model, TenantModel)
        and model.purged_with_restaurant
        and model._meta.managed
        and not model._meta.proxy
    )


def _tenant_links(model: type[models.Model]) -> Iterator[models.ForeignKey]:
    """The model's foreign keys to purged tenant models (the restaurant key aside)."""
    for field_ in model._meta.concrete_fields:
        related = field_.related_model
        linked = (field_.many_to_one or field_.one_to_one) and isinstance(related, type)
        if linked and _purged(related):  # type: ignore[arg-type]
            yield field_  # type: ignore[misc]


def purged_models() -> list[type[TenantModel]]:
    """Every purged tenant model, each before the models its rows point at.

    Foreign keys are checked when each batch's transaction commits, so a row must go no
    later than the rows it refers to. A model's keys to itself are cleared first instead.
    """
    found = sorted(
        (cast(type[TenantModel], m) for m in apps.get_models() if _purged(m)),
        key=lambda m: m._meta.label,
    )
    # The sorter yields a node after its predecessors: a parent's predecessors are the models
    # that refer to it.
    graph: dict[type[TenantModel], set[type[TenantModel]]] = {model: set() for model in found}
    for model in found:
        for link in _tenant_links(model):
            if link.related_model is not model:
                graph[cast(type[TenantModel], link.related_model)].add(model)
    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        raise RuntimeError(
            f"Tenant models refer to each other in a cycle: {error.args[1]}"
        ) from error


def unsupported_relations() -> list[str]:
    """Relations the purge could not honour: it deletes rows by table, so every reference to
    a purged row must come from a purged table (or be cleared with it)."""
    problems = []
    for model in apps.get_models():
        for field_ in model._meta.get_fields():
            related = field_.related_model
            if not (isinstance(related, type) and _purged(related)):
                continue
            if field_.many_to_many and not field_.auto_created:
                problems.append(f"{model._meta.label}.{field_.name}: many-to-many")
            elif field_.concrete and not field_.auto_created and not _purged(model):
                problems.append(f"{model._meta.label}.{field_.name} refers to a purged table")
            elif field_.concrete and related is model and not field_.null:
                problems.append(f"{model._meta.label}.{field_.name}: required self-reference")
    return problems


# --- The batches ----------------------------------------------------------------------------


def _quoted(model: type[models.Model]) -> tuple[str, str, str]:
    """The table, its primary key and its restaurant column, quoted for SQL."""
    quote = connection.ops.quote_name
    return (
        quote(model._meta.db_table),
        quote(str(getattr(model._meta.pk, "column", "id"))),
        quote(str(getattr(model._meta.get_field("restaurant"), "column", "restaurant_id"))),
    )


def _add_rows(record_pk: int, label: str, count: int) -> None:
    record = DeletionRecord.objects.select_for_update(no_key=True).get(pk=record_pk)
    record.row_counts[label] = int(record.row_counts.get(label, 0)) + count
    record.save(update_fields=["row_counts"])


def _delete_batch(model: type[TenantModel], restaurant: Restaurant, record_pk: int) -> int:
    """Delete up to BATCH_SIZE of the restaurant's rows of ``model`` in one transaction."""
    table, pk, column = _quoted(model)
    with tenant_context(restaurant), current_connection().cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE {pk} IN "  # noqa: S608 - quoted identifiers only
            f"(SELECT {pk} FROM {table} WHERE {column} = %s ORDER BY {pk} LIMIT %s)",
            [restaurant.pk, BATCH_SIZE],
        )
        deleted = cursor.rowcount
        if deleted:
            _add_rows(record_pk, model._meta.label_lower, deleted)
    return deleted


def _detach_batch(model: type[TenantModel], link: models.ForeignKey, restaurant: Restaurant) -> int:
    """Clear up to BATCH_SIZE of a model's references to its own rows (e.g. ``invited_by``)."""
    table, pk, column = _quoted(model)
    target = connection.ops.quote_name(link.column)
    with tenant_context(restaurant), current_connection().cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {target} = NULL WHERE {pk} IN "  # noqa: S608
            f"(SELECT {pk} FROM {table} WHERE {column} = %s AND {target} IS NOT NULL "
            f"ORDER BY {pk} LIMIT %s)",
            [restaurant.pk, BATCH_SIZE],
        )
        return cursor.rowcount


def _remaining(model: type[TenantModel], restaurant: Restaurant) -> bool:
    table, _pk, column = _quoted(model)
    with tenant_context(restaurant), current_connection().cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {column} = %s)",  # noqa: S608
            [restaurant.pk],
        )
        return bool(cursor.fetchone()[0])


def _delete_rows(restaurant: Restaurant, record_pk: int) -> None:
    order = purged_models()
    for _ in range(MAX_PASSES):
        for model in order:
            for link in _tenant_links(model):
                if link.related_model is model:
                    while _detach_batch(model, link, restaurant) == BATCH_SIZE:
                        pass
            while _delete_batch(model, restaurant, record_pk) == BATCH_SIZE:
                pass
        left = [model._meta.label for model in order if _remaining(model, restaurant)]
        if not left:
            return
    raise PurgeIncomplete(f"Rows still present after {MAX_PASSES} passes: {', '.join(left)}")


# --- Stored files ---------------------------------------------------------------------------


def storage_prefix(restaurant_id: int) -> str:
    """The folder of every file kept for a restaurant (images, logo, export files)."""
    return f"restaurants/{int(restaurant_id)}/"


def _walk(storage: Storage, folder: str) -> Iterator[str]:
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{folder}{name}"
    for name in folders:
        yield from _walk(storage, f"{folder}{name}/")


def _remove_empty_folders(storage: Storage, prefix: str) -> None:
    """A file system keeps folders once their files are gone; a bucket has none to remove."""
    if not isinstance(storage, FileSystemStorage):
        return
    root = storage.path(prefix)
    if not os.path.isdir(root):
        return
    for path, _folders, _files in os.walk(root, topdown=False):
        with contextlib.suppress(OSError):  # not empty: a file arrived meanwhile
            os.rmdir(path)


def delete_files(restaurant_id: int) -> int:
    """Delete everything under the restaurant's prefix in every file storage; return the count."""
    prefix = storage_prefix(restaurant_id)
    deleted = 0
    for alias in settings.STORAGES:
        if alias in STATIC_STORAGES:
            continue
        storage = storages[alias]
        for key in list(_walk(storage, prefix)):
            storage.delete(key)
            deleted += 1
        _remove_empty_folders(storage, prefix)
    return deleted


# --- One restaurant -------------------------------------------------------------------------


@transaction.atomic
def _begin(restaurant_id: int, now: datetime) -> DeletionRecord | None:
    """Mark the purge as begun (no cancel from now on); None if it is not due after all."""
    restaurant = Restaurant.objects.locked(restaurant_id)
    purge_after = restaurant.purge_after
    due = restaurant.status == Restaurant.Status.PENDING_DELETION
    if not due or purge_after is None or purge_after > now:
        return None
    if restaurant.purge_started_at is None:
        restaurant.purge_started_at = now
        restaurant.save(update_fields=["purge_started_at", "updated_at"])
    # The record is the restaurant's row (row-level security) until the platform reads it.
    with tenant_context(restaurant):
        record, _ = DeletionRecord.objects.get_or_create(
            restaurant_id=restaurant.pk,
            defaults={
                "slug": restaurant.slug,
                "requested_at": restaurant.deletion_requested_at or now,
                "purge_after": purge_after,
                "purge_started_at": restaurant.purge_started_at,
            },
        )
    return record


def _save_outcome(
    restaurant: Restaurant, record_pk: int, name: str, outcome: dict[str, Any]
) -> None:
    with tenant_context(restaurant):
        locked = DeletionRecord.objects.select_for_update(no_key=True).get(pk=record_pk)
        locked.outcomes[name] = outcome
        locked.save(update_fields=["outcomes"])


def _run_steps(restaurant: Restaurant, record: DeletionRecord) -> None:
    for name, step in _steps.items():
        if name in record.outcomes:
            continue
        outcome = step(restaurant)
        _save_outcome(restaurant, record.pk, name, outcome)
        record.outcomes[name] = outcome


def _finish(restaurant_id: int, record_pk: int, files: int, now: datetime) -> DeletionRecord:
    with transaction.atomic():
        # FOR UPDATE: the organization (a unique key) is cleared. By now the restaurant
        # takes no writes, so no writer's COMMIT waits on this row meanwhile.
        restaurant = Restaurant.objects.locked(restaurant_id, key_change=True)
        with tenant_context(restaurant):
            record = DeletionRecord.objects.select_for_update(no_key=True).get(pk=record_pk)
        organization = restaurant.clerk_organization_id
        restaurant.status = Restaurant.Status.DELETED
        for name, value in CLEARED_FIELDS.items():
            setattr(restaurant, name, value)
        restaurant.save(update_fields=["status", *CLEARED_FIELDS, "updated_at"])
        record.files_deleted += files
        record.purged_at = now
        with tenant_context(restaurant):
            record.save(update_fields=["files_deleted", "purged_at"])
            audit.record(
                registry.RESTAURANT_PURGED,
                actor=audit.SCHEDULER,
                target=restaurant,
                changes={
                    "status": {"before": Restaurant.Status.PENDING_DELETION, "after": "deleted"},
                    "rows_deleted": {"before": None, "after": record.rows_deleted},
                    "files_deleted": {"before": None, "after": record.files_deleted},
                },
            )
        slug = restaurant.slug

        def forget_lookups() -> None:
            # Cached host and organization lookups must not outlive the restaurant.
            forget_organization(organization)
            forget_storefront_host(slug)

        transaction.on_commit(forget_lookups)
    return record


def purge_restaurant(restaurant_id: int, *, now: datetime | None = None) -> DeletionRecord | None:
    """Purge one restaurant if it is due; None when it is not (or another run is on it)."""
    now = now or timezone.now()
    # A session lock: it spans the batches' transactions.
    with locks.session_lock(locks.RESTAURANT_PURGE, restaurant_id) as acquired:
        if not acquired:
            return None
        record = _begin(restaurant_id, now)
        if record is None:
            return None
        restaurant = Restaurant.objects.get(pk=restaurant_id)
        logger.info("Purging restaurant %s", restaurant_id, extra={"restaurant_id": restaurant_id})
        _run_steps(restaurant, record)
        _delete_rows(restaurant, record.pk)
        files = delete_files(restaurant_id)
        record = _finish(restaurant_id, record.pk, files, now)
    logger.info(
        "Purged restaurant %s: %s rows, %s files",
        restaurant_id,
        record.rows_deleted,
        record.files_deleted,
        extra={"restaurant_id": restaurant_id},
    )
    return record


@dataclass
class PurgeReport:
    purged: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    # Restaurants (purged earlier) whose pending work outside the database finished now, and
    # those whose work is still pending (their third party is still down).
    followed_up: list[int] = field(default_factory=list)
    still_pending: list[int] = field(default_factory=list)


def follow_up_pending(report: PurgeReport) -> None:
    """Retry what purge steps left pending, each record's on its own; the data purge is not
    run again. A follow-up that fails leaves its work pending for the next run."""
    for name, follow_up in _follow_ups.items():
        # Which purged restaurants still owe this step: a read across restaurants.
        with tenant_bypass():
            waiting = list(
                DeletionRecord.objects.filter(**{f"outcomes__{name}__has_key": PENDING})
                .order_by("pk")
                .values_list("pk", "restaurant_id")
            )
        for record_pk, restaurant_id in waiting:
            restaurant = Restaurant.objects.get(pk=restaurant_id)
            with locks.session_lock(locks.RESTAURANT_PURGE, restaurant_id) as acquired:
                if not acquired:
                    continue  # a purge of it is running; the next run follows up
                with tenant_context(restaurant):
                    outcome = DeletionRecord.objects.get(pk=record_pk).outcomes[name]
                try:
                    outcome = follow_up(dict(outcome))
                except Exception:
                    logger.exception(
                        "Purge follow-up %r of restaurant %s failed", name, restaurant_id
                    )
                else:
                    _save_outcome(restaurant, record_pk, name, outcome)
            if PENDING in outcome:
                report.still_pending.append(restaurant_id)
            else:
                report.followed_up.append(restaurant_id)


def purge_due_restaurants(*, now: datetime | None = None) -> PurgeReport:
    """The periodic job: retry what earlier purges left pending, then purge every restaurant
    whose grace period is over.

    Each restaurant is purged on its own; one failure does not stop the others, and is
    raised (as :class:`PurgeFailed`) once the rest are done, so the run is seen to fail.
    Work left pending (a third party down) is no failure: it is reported and retried.
    """
    now = now or timezone.now()
    report = PurgeReport()
    follow_up_pending(report)
    due = list(
        Restaurant.objects.filter(status=Restaurant.Status.PENDING_DELETION, purge_after__lte=now)
        .order_by("purge_after", "pk")
        .values_list("pk", flat=True)
    )
    for restaurant_id in due:
        try:
            record = purge_restaurant(restaurant_id, now=now)
        except Exception as error:
            # Logged with its traceback; the restaurant stays due and the next run resumes.
            logger.exception("Purge of restaurant %s failed", restaurant_id)
            report.failed[restaurant_id] = f"{type(error).__name__}: {error}"
            continue
        if record is not None:
            report.purged.append(restaurant_id)
            if record.pending_steps:
                report.still_pending.append(restaurant_id)
    if report.failed:
        raise PurgeFailed(f"Purge failed for restaurants {sorted(report.failed)}; see the log.")
    return report
