"""Creating, changing, rotating and deleting webhook endpoints; sending a test message; sending
deliveries again. Every change is audited in its own transaction.

An endpoint remembers the scopes of whoever last set what it receives (``Endpoint.scopes``):
a person's role, or an API key's grants within its creator's role. Events and payload
fields beyond them are never sent to it (``webhooks.fanout``, ``webhooks.sender``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit import registry
from audit import services as audit
from nordkestrel import events
from nordkestrel.errors import ConflictError, InvalidInput, NotFoundError, PermissionDeniedError
from staff.auth import Actor
from staff.roles import Scope
from tenants.models import Restaurant
from webhooks import addresses, fanout, health, messages
from webhooks.models import Delivery, Endpoint

MAX_ENDPOINTS = 10
# Deliveries one "recover" sends again at most (a larger backlog: recover again later).
MAX_RECOVER = 10_000


@dataclass(frozen=True)
class IssuedEndpoint:
    """An endpoint and its signing secret, shown this once."""

    endpoint: Endpoint
    secret: str = field(repr=False)


def _check_types(actor: Actor, event_types: Sequence[str]) -> list[str]:
    chosen: list[str] = []
    for index, name in enumerate(event_types):
        try:
            entry = events.catalogue_entry(name)
        except LookupError:
            raise InvalidInput(
                f"{name!r} is not an event type (GET /api/v1/events/types lists them).",
                code="unknown_event_type",
                attr=f"event_types.{index}",
            ) from None
        if entry.scope not in actor.scopes:
            raise InvalidInput(
                f"{name} needs {entry.scope}, which you do not hold.",
                code="scope_not_held",
                attr=f"event_types.{index}",
            )
        if name not in chosen:
            chosen.append(name)
    return chosen


def _scopes(actor: Actor) -> list[str]:
    return sorted(str(scope) for scope in actor.scopes)


def _key_id(actor: Actor) -> object:
    return actor.identity().get("api_key_id") if actor.via_api_key else None


def _locked(actor: Actor, endpoint_id: int, *, deleting: bool = False) -> Endpoint:
    """The endpoint's row, locked before any of its deliveries (the lock order: the endpoint,
    then its deliveries, then the audit chain). ``FOR NO KEY UPDATE`` unless it is about to be
    deleted. Deleted meanwhile: 404, as if it had never been.

    An API key changes only the endpoints created with it: another integrator's endpoint (or
    one staff set up) is not a key's to redirect, rotate (its new secret would let the key
    sign messages that endpoint trusts), replay or delete."""
    rows = Endpoint.objects.select_for_update(no_key=not deleting).filter(pk=endpoint_id)
    locked = rows.first()
    if locked is None:
        raise NotFoundError("Not found.")
    if actor.via_api_key and locked.created_by_key_id != _key_id(actor):
        raise PermissionDeniedError(
            "An API key changes only the webhook endpoints created with it; an Owner or Admin "
            "changes the others on the dashboard.",
            code="not_endpoint_creator",
        )
    return locked


def _changes(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
    }


@transaction.atomic
def endpoint_create(
    *,
    actor: Actor,
    url: str,
    description: str = "",
    event_types: Sequence[str] = (),
    enabled: bool = True,
) -> IssuedEndpoint:
    actor.require(Scope.WEBHOOKS_MANAGE)
    addresses.validate(url)
    chosen = _check_types(actor, event_types)
    # The restaurant row (lock level 3) makes the count exact.
    Restaurant.objects.locked(actor.restaurant.pk)
    if Endpoint.objects.count() >= MAX_ENDPOINTS:
        raise ConflictError(
            f"A restaurant has at most {MAX_ENDPOINTS} webhook endpoints; delete one first.",
            code="too_many_endpoints",
        )
    secret = messages.new_secret()
    endpoint = Endpoint.objects.create(
        url=url,
        description=description,
        event_types=chosen,
        enabled=enabled,
        disabled_reason="" if enabled else Endpoint.Disabled.MANUALLY,
        disabled_at=None if enabled else timezone.now(),
        secret=secret,
        scopes=_scopes(actor),
        created_by=actor.member,
        created_by_key_id=_key_id(actor),
    )
    audit.record(
        registry.WEBHOOK_ENDPOINT_CREATED, actor=actor, target=endpoint, changes=_changes(endpoint)
    )
    return IssuedEndpoint(endpoint, secret)


@transaction.atomic
def endpoint_update(*, actor: Actor, endpoint: Endpoint, **changes: Any) -> Endpoint:
    """Change the URL, description, event types or whether it is enabled. Whoever sets the
    event types (or the URL) sets the scopes it receives with."""
    actor.require(Scope.WEBHOOKS_MANAGE)
    # Checked before the row is locked: resolving the host may take a while.
    url = addresses.validate(changes["url"]) if "url" in changes else None
    chosen = _check_types(actor, changes["event_types"]) if "event_types" in changes else None
    endpoint = _locked(actor, endpoint.pk)
    before = _changes(endpoint)
    if url is not None:
        endpoint.url = url
    if "description" in changes:
        endpoint.description = changes["description"]
    if chosen is not None:
        endpoint.event_types = chosen
    if "url" in changes or "event_types" in changes:
        endpoint.scopes = _scopes(actor)
    enable = changes.get("enabled")
    if enable is True and not endpoint.enabled:
        endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = True, "", None
        endpoint.failing_since = endpoint.failure_warned_at = None
    endpoint.save()
    after = _changes(endpoint)
    # The audit chain is the last lock a transaction takes: the deliveries a disable fails
    # are written before any audit event.
    if enable is False and endpoint.enabled:
        health.disable(endpoint, Endpoint.Disabled.MANUALLY, actor)
    if after != before:
        audit.record(
            registry.WEBHOOK_ENDPOINT_UPDATED,
            actor=actor,
            target=endpoint,
            changes={k: {"from": before[k], "to": v} for k, v in after.items() if before[k] != v},
        )
    return endpoint


@transaction.atomic
def endpoint_rotate(*, actor: Actor, endpoint: Endpoint) -> IssuedEndpoint:
    """A new signing secret; for 24 hours each delivery is signed with both (a second
    rotation ends the earlier overlap: at most two secrets sign)."""
    actor.require(Scope.WEBHOOKS_MANAGE)
    endpoint = _locked(actor, endpoint.pk)
    secret = messages.new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + messages.ROTATION_OVERLAP
    endpoint.secret = secret
    endpoint.save(
        update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
    )
    audit.record(
        registry.WEBHOOK_ENDPOINT_SECRET_ROTATED,
        actor=actor,
        target=endpoint,
        changes={"previous_secret_expires_at": endpoint.previous_secret_expires_at.isoformat()},
    )
    return IssuedEndpoint(endpoint, secret)


@transaction.atomic
def endpoint_delete(*, actor: Actor, endpoint: Endpoint) -> None:
    """The endpoint, its deliveries and their log go at once."""
    actor.require(Scope.WEBHOOKS_MANAGE)
    endpoint = _locked(actor, endpoint.pk, deleting=True)
    pk, label, changes = endpoint.pk, str(endpoint), _changes(endpoint)
    # Deleted before the audit event is written: the audit chain is the last lock taken.
    endpoint.delete()
    audit.record(
        registry.WEBHOOK_ENDPOINT_DELETED,
        actor=actor,
        target_type=Endpoint._meta.label_lower,
        target_id=pk,
        target_label=label,
        changes=changes,
    )


@transaction.atomic
def send_test(*, actor: Actor, endpoint: Endpoint) -> Delivery:
    """A ``webhook.test`` message to the endpoint (enabled or not), sent by the sender like
    any other and logged, tried once."""
    actor.require(Scope.WEBHOOKS_MANAGE)
    # The endpoint first (a delete waits, or has happened: 404, never a foreign key error
    # at COMMIT), then its new delivery.
    endpoint = _locked(actor, endpoint.pk)
    now = timezone.now()
    delivery = Delivery.objects.create(
        endpoint=endpoint,
        event_type=messages.TEST_EVENT_TYPE,
        message_id=f"test_{uuid.uuid4()}",
        test_payload=messages.test_payload(actor.restaurant.pk),
        next_attempt_at=now,
        manual=True,
    )
    fanout.notify()
    return delivery


def _resend(deliveries: Any) -> int:
    count: int = deliveries.update(
        status=Delivery.Status.PENDING,
        next_attempt_at=timezone.now(),
        locked_until=None,
        manual=True,
    )
    if count:
        fanout.notify()
    return count


def _enabled(endpoint: Endpoint) -> None:
    if not endpoint.enabled:
        raise ConflictError("The endpoint is disabled: enable it first.", code="endpoint_disabled")


@transaction.atomic
def resend(*, actor: Actor, delivery: Delivery) -> Delivery:
    """Send one delivery again now (whatever became of it), once, with the same webhook-id.
    Waits for an attempt in flight to end."""
    actor.require(Scope.WEBHOOKS_MANAGE)
    endpoint = _locked(actor, delivery.endpoint_id)
    _enabled(endpoint)
    locked = Delivery.objects.select_for_update(no_key=True).filter(pk=delivery.pk).first()
    if locked is None:  # pruned meanwhile
        raise NotFoundError("Not found.")
    delivery = locked
    if delivery.locked_until is not None and delivery.locked_until > timezone.now():
        raise ConflictError("An attempt is in flight; try again in a moment.", code="in_flight")
    _resend(Delivery.objects.filter(pk=delivery.pk))
    audit.record(
        registry.WEBHOOK_DELIVERIES_RESENT,
        actor=actor,
        target=endpoint,
        changes={"delivery": delivery.pk, "message_id": delivery.message_id},
    )
    delivery.refresh_from_db()
    return delivery


@transaction.atomic
def recover(*, actor: Actor, endpoint: Endpoint, since: datetime) -> int:
    """Send again, once each, every delivery to the endpoint that failed and was created
    since ``since`` (at most 30 days back, where the log ends)."""
    actor.require(Scope.WEBHOOKS_MANAGE)
    endpoint = _locked(actor, endpoint.pk)
    _enabled(endpoint)
    if since > timezone.now():
        raise InvalidInput("Choose a time in the past.", attr="since")
    ids = list(
        Delivery.objects.filter(
            endpoint=endpoint, status=Delivery.Status.FAILED, created_at__gte=since
        )
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[:MAX_RECOVER]
    )
    count = _resend(Delivery.objects.filter(pk__in=ids)) if ids else 0
    audit.record(
        registry.WEBHOOK_DELIVERIES_RESENT,
        actor=actor,
        target=endpoint,
        changes={"since": since.isoformat(), "deliveries": count},
    )
    return count
