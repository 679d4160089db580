import threading

import pytest

from nordkestrel.errors import ConflictError, PermissionDeniedError
from staff import services
from staff.auth import Actor, ReverificationRequired
from staff.models import StaffMember
from staff.roles import Role
from tenants.context import tenant_context
from tests.factories import make_staff, run_concurrently

pytestmark = pytest.mark.django_db


def act(member, session=None):
    return Actor(member=member, session=session)


def test_invite_creates_a_pending_member(roster, restaurants):
    ours, _ = restaurants
    owner = roster[("ours", "owner")]
    with tenant_context(ours):
        member = services.staff_invite(
            actor=act(owner), email="New@Ours.example.com", name=" New ", role=Role.CASHIER
        )
    assert member.is_pending and member.active
    assert (member.restaurant_id, member.name, member.invited_by_id) == (ours.pk, "New", owner.pk)


def test_invite_refuses_a_duplicate_email_in_any_case(roster, restaurants):
    ours, _ = restaurants
    existing = roster[("ours", "kitchen")]
    with tenant_context(ours), pytest.raises(ConflictError):
        services.staff_invite(
            actor=act(roster[("ours", "owner")]),
            email=existing.email.upper(),
            name="",
            role=Role.KITCHEN,
        )


def test_same_email_may_work_at_another_restaurant(roster, restaurants):
    _, theirs = restaurants
    email = roster[("ours", "kitchen")].email
    with tenant_context(theirs):
        member = services.staff_invite(
            actor=act(roster[("theirs", "owner")]), email=email, name="", role=Role.KITCHEN
        )
    assert member.restaurant_id == theirs.pk


@pytest.mark.parametrize("role", ["manager", "cashier", "kitchen"])
def test_roles_without_staff_write_cannot_invite(roster, restaurants, role):
    with tenant_context(restaurants[0]), pytest.raises(PermissionDeniedError):
        services.staff_invite(
            actor=act(roster[("ours", role)]), email="x@ours.example.com", name="", role="kitchen"
        )


def test_admin_cannot_invite_or_touch_owners(roster, restaurants):
    admin = act(roster[("ours", "admin")])
    owner = roster[("ours", "owner")]
    with tenant_context(restaurants[0]):
        with pytest.raises(PermissionDeniedError):
            services.staff_invite(actor=admin, email="o@ours.example.com", name="", role="owner")
        with pytest.raises(PermissionDeniedError):
            services.staff_update(actor=admin, member=owner, role=Role.CASHIER)
        with pytest.raises(PermissionDeniedError):
            services.staff_deactivate(actor=admin, member=owner)
        with pytest.raises(PermissionDeniedError):
            services.staff_update(actor=admin, member=roster[("ours", "cashier")], role=Role.OWNER)
        owner.refresh_from_db()
    assert owner.role == Role.OWNER and owner.active


def test_admin_manages_lower_roles(roster, restaurants):
    admin = act(roster[("ours", "admin")])
    cashier = roster[("ours", "cashier")]
    with tenant_context(restaurants[0]):
        services.staff_update(actor=admin, member=cashier, role=Role.MANAGER, name="Promoted")
        services.staff_deactivate(actor=admin, member=roster[("ours", "kitchen")])
        cashier.refresh_from_db()
        assert (cashier.role, cashier.name) == (Role.MANAGER, "Promoted")
        assert not StaffMember.objects.get(pk=roster[("ours", "kitchen")].pk).active


def test_last_owner_cannot_be_demoted_or_removed(roster, restaurants):
    owner = roster[("ours", "owner")]
    with tenant_context(restaurants[0]):
        with pytest.raises(ConflictError) as demoted:
            services.staff_update(actor=act(owner), member=owner, role=Role.ADMIN)
        assert demoted.value.code == "last_owner"
        with pytest.raises(ConflictError):
            services.staff_deactivate(actor=act(owner), member=owner)
        owner.refresh_from_db()
    assert owner.role == Role.OWNER and owner.active


def test_an_owner_can_step_down_when_another_remains(roster, restaurants):
    ours = restaurants[0]
    owner = roster[("ours", "owner")]
    second = make_staff(ours, Role.OWNER)
    with tenant_context(ours):
        services.staff_update(actor=act(owner), member=owner, role=Role.ADMIN)
        with pytest.raises(ConflictError):
            services.staff_deactivate(actor=act(second), member=second)


class FakeSession:
    def __init__(self, verified_minutes_ago):
        self.minutes = verified_minutes_ago

    def second_factor_verified_within(self, minutes):
        return self.minutes is not None and 0 <= self.minutes <= minutes


def test_staff_changes_need_recent_mfa_when_the_restaurant_asks(roster, restaurants):
    ours = restaurants[0]
    ours.require_mfa_for_sensitive_actions = True
    ours.save()
    owner = roster[("ours", "owner")]
    owner.restaurant = ours
    with tenant_context(ours):
        for session in (None, FakeSession(None), FakeSession(11)):
            with pytest.raises(ReverificationRequired):
                services.staff_invite(
                    actor=act(owner, session), email="m@ours.example.com", name="", role="kitchen"
                )
        services.staff_invite(
            actor=act(owner, FakeSession(3)), email="m@ours.example.com", name="", role="kitchen"
        )


@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner(restaurants):
    ours = restaurants[0]
    first, second = make_staff(ours, Role.OWNER), make_staff(ours, Role.OWNER)
    barrier = threading.Barrier(2)

    def demote(actor_pk, target_pk):
        with tenant_context(ours):
            # Each request loads its own copies, as two real requests would.
            actor_member = StaffMember.objects.select_related("restaurant").get(pk=actor_pk)
            target = StaffMember.objects.get(pk=target_pk)
            barrier.wait(timeout=10)
            services.staff_update(actor=act(actor_member), member=target, role=Role.ADMIN)
        return "ok"

    outcomes = run_concurrently(
        lambda: demote(first.pk, second.pk), lambda: demote(second.pk, first.pk)
    )
    refused = [o for o in outcomes if isinstance(o, ConflictError | PermissionDeniedError)]
    assert (outcomes.count("ok"), len(refused)) == (1, 1), outcomes
    with tenant_context(ours):
        assert StaffMember.objects.filter(role=Role.OWNER, active=True).count() == 1


def test_an_unclaimed_owner_invitation_does_not_count_as_an_owner(roster, restaurants):
    owner = roster[("ours", "owner")]
    with tenant_context(restaurants[0]):
        services.staff_invite(actor=act(owner), email="ghost@example.com", name="", role="owner")
        with pytest.raises(ConflictError):
            services.staff_update(actor=act(owner), member=owner, role=Role.KITCHEN)


def test_a_demoted_actor_cannot_use_the_role_it_had(roster, restaurants):
    """The service re-reads the actor: a role lost mid-request is lost for the change too."""
    admin = roster[("ours", "admin")]
    with tenant_context(restaurants[0]):
        StaffMember.objects.filter(pk=admin.pk).update(role=Role.KITCHEN)
        with pytest.raises(PermissionDeniedError):
            services.staff_deactivate(actor=act(admin), member=roster[("ours", "cashier")])
