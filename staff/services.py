"""Every change to the roster. Each takes the acting staff member and checks its scope."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit import registry
from audit import services as audit
from nordkestrel.errors import ConflictError, InvalidInput, NotFoundError, PermissionDeniedError
from staff.auth import Actor
from staff.models import StaffMember
from staff.roles import Role, Scope, can_manage


def _require_can_manage(actor: Actor, role: str) -> None:
    if not can_manage(actor.role, role):
        raise PermissionDeniedError(f"Your role cannot manage {Role(role).label} members.")


def _signed_in_owners() -> Q:
    """Owners still to claim their invitation do not count: they cannot sign in yet."""
    return Q(role=Role.OWNER, active=True, clerk_user_id__isnull=False)


def _lock_fresh(actor: Actor, member: StaffMember) -> tuple[Actor, StaffMember]:
    """Re-read the actor's and the target's rows under a lock, with the Owners' rows.

    Role checks then see the roster as it is now (not as the request first loaded it). Every
    row is locked in one statement in primary-key order, so two changes to the roster queue
    instead of deadlocking, and no other change can demote or remove an Owner meanwhile.
    ``FOR NO KEY UPDATE`` of the staff rows only (the restaurant is joined, not locked).
    """
    rows = {
        row.pk: row
        for row in StaffMember.objects.select_for_update(no_key=True, of=("self",))
        .select_related("restaurant")
        .filter(Q(pk__in={actor.member.pk, member.pk}) | _signed_in_owners())
        .order_by("pk")
    }
    current = rows.get(actor.member.pk)
    if current is None or not current.active:
        raise PermissionDeniedError("You are no longer on this restaurant's staff.")
    if member.pk not in rows:
        raise NotFoundError("Not found.")
    return Actor(member=current, session=actor.session), rows[member.pk]


def _ensure_another_owner_remains(member: StaffMember) -> None:
    """The last Owner who can sign in can be neither demoted nor removed, however requests race
    (:func:`_lock_fresh` holds every Owner's row)."""
    owners = StaffMember.objects.filter(_signed_in_owners()).exclude(pk=member.pk)
    if not owners.exists():
        raise ConflictError(
            "A restaurant always keeps at least one active Owner.", code="last_owner"
        )


@transaction.atomic
def staff_invite(*, actor: Actor, email: str, name: str, role: str) -> StaffMember:
    actor.require(Scope.STAFF_WRITE)
    _require_can_manage(actor, role)
    email = email.strip()
    if StaffMember.objects.filter(email__iexact=email).exists():
        raise ConflictError("This email is already on the staff list.", attr="email")
    try:
        with transaction.atomic():
            member = StaffMember.objects.create(
                email=email,
                name=name.strip(),
                role=role,
                invited_at=timezone.now(),
                invited_by=actor.member,
            )
    except IntegrityError:
        raise ConflictError("This email is already on the staff list.", attr="email") from None
    audit.record(
        registry.STAFF_INVITED,
        actor=actor,
        target=member,
        changes={"email": {"before": None, "after": member.email},
                 "role": {"before": None, "after": member.role}},
    )  # fmt: skip
    return member


@transaction.atomic
def staff_update(
    *, actor: Actor, member: StaffMember, role: str | None = None, name: str | None = None
) -> StaffMember:
    actor.require(Scope.STAFF_WRITE)
    actor, member = _lock_fresh(actor, member)
    _require_can_manage(actor, member.role)
    before = {"role": member.role, "name": member.name}
    if role is not None and role != member.role:
        _require_can_manage(actor, role)
        if member.role == Role.OWNER and member.active:
            _ensure_another_owner_remains(member)
        member.role = role
    if name is not None:
        member.name = name.strip()
    changes = audit.diff(before, {"role": member.role, "name": member.name})
    if changes:
        member.save(update_fields=[*changes, "updated_at"])
        action = registry.STAFF_ROLE_CHANGED if "role" in changes else registry.STAFF_UPDATED
        audit.record(action, actor=actor, target=member, changes=changes)
    return member


@transaction.atomic
def staff_deactivate(*, actor: Actor, member: StaffMember) -> StaffMember:
    actor.require(Scope.STAFF_WRITE)
    actor, member = _lock_fresh(actor, member)
    _require_can_manage(actor, member.role)
    if not member.active:
        return member
    if member.role == Role.OWNER:
        _ensure_another_owner_remains(member)
    member.active = False
    member.save(update_fields=["active", "updated_at"])
    audit.record(
        registry.STAFF_DEACTIVATED,
        actor=actor,
        target=member,
        changes={"active": {"before": True, "after": False}},
    )
    return member


def validate_role(role: str) -> str:
    if role not in Role.values:
        raise InvalidInput(f"Choose one of: {', '.join(Role.values)}.", attr="role")
    return role
