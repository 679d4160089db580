"""Writing the audit log (one event per action, in the action's own transaction), verifying
its hash chain, and pruning it after retention."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Protocol

from django.db import DatabaseError, transaction
from django.utils import timezone

from audit import registry
from audit.models import AuditAnchor, AuditEvent
from nordkestrel import locks
from nordkestrel.context import current_request_meta
from nordkestrel.dbrouting import current_connection
from tenants.context import current_restaurant, platform_context
from tenants.models import Restaurant

RETENTION_SQL = "12 months"  # the same interval in the append-only trigger (migration 0004)
SECRET_MARKERS = ("secret", "token", "password", "key", "iban", "account_number")
MASK = "[masked]"
GENESIS = ""


class _Member(Protocol):
    pk: Any
    clerk_user_id: str | None
    role: str

    @property
    def label(self) -> str: ...


class _StaffActor(Protocol):
    @property
    def member(self) -> Any: ...


@dataclass(frozen=True)
class SystemActor:
    """A non-person actor: "system", "stripe", "scheduler", "platform"."""

    name: str


SYSTEM = SystemActor("system")
SCHEDULER = SystemActor("scheduler")


def _actor_fields(actor: _StaffActor | SystemActor | None) -> dict[str, Any]:
    if actor is None or isinstance(actor, SystemActor):
        name = actor.name if actor else "system"
        return {"actor_type": name, "actor_id": None, "actor_clerk_user_id": "",
                "actor_role": "", "actor_label": name}  # fmt: skip
    own = getattr(actor, "audit_actor", None)
    if own is not None:  # a credential acting for a member (an API key) names itself
        return dict(own())
    member = actor.member
    return {
        "actor_type": "staff",
        "actor_id": member.pk,
        "actor_clerk_user_id": member.clerk_user_id or "",
        "actor_role": str(member.role),
        "actor_label": member.label[:254],
    }


def _jsonable(value: Any) -> Any:
    """Values that survive jsonb unchanged: floats (which jsonb may rewrite) become text,
    and any key that names a secret, at any depth, is masked."""
    if isinstance(value, Mapping):
        return {
            str(key): MASK if _is_secret(str(key)) else _jsonable(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    return str(value)


def _is_secret(name: str) -> bool:
    return any(marker in name.lower() for marker in SECRET_MARKERS)


def mask_secrets(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Changed fields as {field: {"before", "after"}}, secrets replaced, JSON-safe."""
    clean: dict[str, Any] = {}
    for field, values in changes.items():
        if _is_secret(field):
            clean[field] = {"before": MASK, "after": MASK}
        else:
            clean[field] = _jsonable(values)
    return clean


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    return {
        field: {"before": before.get(field), "after": after.get(field)}
        for field in sorted(set(before) | set(after))
        if before.get(field) != after.get(field)
    }


def _canonical(event: AuditEvent) -> str:
    occurred = event.occurred_at.astimezone(UTC)
    return json.dumps(
        {
            "restaurant_id": event.restaurant_id,
            "sequence": event.sequence,
            "occurred_at": occurred.isoformat(timespec="microseconds"),
            "action": event.action,
            "actor_type": event.actor_type,
            "actor_id": event.actor_id,
            "actor_clerk_user_id": event.actor_clerk_user_id,
            "actor_role": event.actor_role,
            "actor_label": event.actor_label,
            "target_type": event.target_type,
            "target_id": event.target_id,
            "target_label": event.target_label,
            "changes": event.changes,
            "ip": event.ip,
            "user_agent": event.user_agent,
            "request_id": event.request_id,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def event_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256(f"{prev_hash}\n{_canonical(event)}".encode()).hexdigest()


def _normal_ip(value: str | None) -> str:
    """One text form per address: IPv4-mapped IPv6 as IPv4, no zone index."""
    if not value:
        return ""
    try:
        address = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def _lock_chain() -> None:
    """Writers, pruning and verification of one restaurant's chain take turns.

    The last lock a transaction takes (nordkestrel/locks.py): nothing may be locked after
    it, and a row the transaction locked before it is locked FOR NO KEY UPDATE where other
    writers' new rows point at it (their COMMIT checks those keys while they hold this)."""
    locks.lock_for_transaction(locks.AUDIT_CHAIN, current_restaurant().pk)


def _chain_head() -> tuple[int, str]:
    """The last link: (sequence, hash) of the newest event, else of the newest anchor."""
    last = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    if last is not None:
        return last
    anchor = AuditAnchor.objects.order_by("-sequence").values_list("sequence", "hash").first()
    return anchor if anchor is not None else (0, GENESIS)


def record(
    action: registry.AuditAction | str,
    *,
    actor: _StaffActor | SystemActor | None,
    target: Any = None,
    target_type: str = "",
    target_id: str | int = "",
    target_label: str = "",
    changes: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the current restaurant's chain, in the caller's transaction.

    Writers in one restaurant queue on an advisory lock held to the end of the transaction,
    so the chain never forks; an error here fails (and rolls back) the action itself.
    """
    name = action.name if isinstance(action, registry.AuditAction) else registry.get(action).name
    if not current_connection().in_atomic_block:
        raise RuntimeError("Audit events are written inside the action's transaction.")
    restaurant = current_restaurant()
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or target.pk
        target_label = target_label or str(getattr(target, "label", None) or target)
    _lock_chain()
    sequence, prev_hash = _chain_head()
    meta = current_request_meta()
    event = AuditEvent(
        restaurant=restaurant,
        sequence=sequence + 1,
        occurred_at=timezone.now(),
        action=name,
        **_actor_fields(actor),
        target_type=target_type[:64],
        target_id=str(target_id)[:64],
        target_label=target_label[:254],
        changes=mask_secrets(changes or {}),
        ip=_normal_ip(meta.ip) if meta else "",
        user_agent=meta.user_agent[:512] if meta else "",
        request_id=meta.request_id if meta else "",
        prev_hash=prev_hash,
    )
    event.hash = event_hash(prev_hash, event)
    event.save(force_insert=True)
    return event


@dataclass(frozen=True)
class BrokenLink:
    sequence: int
    event_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"event #{self.sequence}" + (f" (id {self.event_id})" if self.event_id else "")
        return f"{where}: {self.reason}"


def verify_chain(*, chunk_size: int = 2000) -> tuple[int, BrokenLink | None]:
    """Walk the current restaurant's chain; return (events checked, first broken link)."""
    _lock_chain()  # a prune committing mid-walk would look like missing events
    anchor = AuditAnchor.objects.order_by("-sequence").values_list("sequence", "hash").first()
    expected_sequence, expected_prev = (anchor[0] + 1, anchor[1]) if anchor else (1, GENESIS)
    checked = 0
    recorded_anchor = False
    events: Iterator[AuditEvent] = AuditEvent.objects.order_by("sequence").iterator(
        chunk_size=chunk_size
    )
    for event in events:
        if event.sequence != expected_sequence:
            kind = "missing" if event.sequence > expected_sequence else "duplicated or reordered"
            return checked, BrokenLink(
                expected_sequence, event.pk, f"sequence {event.sequence} found: events {kind}"
            )
        if event.prev_hash != expected_prev:
            return checked, BrokenLink(
                event.sequence, event.pk, "prev_hash does not match the previous event"
            )
        if event_hash(event.prev_hash, event) != event.hash:
            return checked, BrokenLink(event.sequence, event.pk, "contents changed after writing")
        checked += 1
        expected_sequence, expected_prev = event.sequence + 1, event.hash
        if anchor and event.action == registry.AUDIT_PRUNED.name:
            through = event.changes.get("pruned_through_sequence", {}).get("after")
            recorded_anchor = recorded_anchor or through == anchor[0]
    if anchor and not recorded_anchor:
        # Pruning always records itself after the anchor: its absence means events after
        # the anchor (at least that record) were removed.
        return checked, BrokenLink(
            expected_sequence, None, "events after the pruning anchor are missing"
        )
    return checked, None


def prune() -> int:
    """Remove the current restaurant's events past retention; the chain stays verifiable.

    Only the platform role may delete from the log, and only events past retention (the
    trigger checks both): run it in ``platform_context(restaurant)``.

    The oldest run of events (all older than 12 months) is removed, the last removed
    event's sequence and hash are kept as an anchor, and the pruning is itself recorded.
    """
    with transaction.atomic(using=current_connection().alias):
        restaurant = current_restaurant()
        _lock_chain()
        with current_connection().cursor() as cursor:
            # The database's clock and interval, exactly as the trigger checks them.
            cursor.execute(f"SELECT now() - interval '{RETENTION_SQL}'")
            (cutoff,) = cursor.fetchone()
        first_kept = (
            AuditEvent.objects.filter(occurred_at__gte=cutoff)
            .order_by("sequence")
            .values_list("sequence", flat=True)
            .first()
        )
        doomed = AuditEvent.objects.filter(occurred_at__lt=cutoff)
        if first_kept is not None:
            doomed = doomed.filter(sequence__lt=first_kept)
        last = doomed.order_by("-sequence").values_list("sequence", "hash").first()
        if last is None:
            return 0
        with current_connection().cursor() as cursor:
            cursor.execute(
                "DELETE FROM audit_auditevent WHERE restaurant_id = %s AND sequence <= %s",
                [restaurant.pk, last[0]],
            )
            removed = cursor.rowcount
        AuditAnchor.objects.create(
            sequence=last[0], hash=last[1], pruned_count=removed, pruned_at=timezone.now()
        )
        record(
            registry.AUDIT_PRUNED,
            actor=SCHEDULER,
            changes={"pruned_through_sequence": {"before": None, "after": last[0]},
                     "events_removed": {"before": None, "after": removed}},
        )  # fmt: skip
        return removed


@dataclass(frozen=True)
class PruneReport:
    removed: dict[str, int]  # restaurant slug: events removed, for each restaurant pruned
    failed: dict[str, str]  # restaurant slug: why it was not pruned


def prune_every_restaurant() -> PruneReport:
    """Prune each restaurant's log in its own context and transaction.

    One restaurant's database error does not stop the others' pruning; it is reported.
    """
    removed: dict[str, int] = {}
    failed: dict[str, str] = {}
    for restaurant in Restaurant.objects.order_by("pk"):
        try:
            with platform_context(restaurant):
                count = prune()
        except DatabaseError as error:
            failed[restaurant.slug] = str(error)
            continue
        if count:
            removed[restaurant.slug] = count
    return PruneReport(removed=removed, failed=failed)
