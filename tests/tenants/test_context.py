"""Wall 1: the scoped manager fails closed, fills the restaurant, refuses a foreign one."""

import threading

import pytest

from staff.models import StaffMember
from staff.roles import Role
from tenants.context import (
    TenantMismatch,
    TenantNotSet,
    current_restaurant_or_none,
    tenant_bypass,
    tenant_context,
)
from tenants.models import OpeningHours
from tests.factories import make_staff

pytestmark = pytest.mark.django_db


def test_query_without_a_restaurant_raises(restaurants):
    with pytest.raises(TenantNotSet):
        list(StaffMember.objects.all())
    with pytest.raises(TenantNotSet):
        StaffMember.objects.filter(role=Role.OWNER).count()


def test_create_without_a_restaurant_raises(restaurants):
    with pytest.raises(TenantNotSet):
        StaffMember.objects.create(email="a@b.example.com", role=Role.KITCHEN)


def test_manager_sees_only_the_current_restaurant(roster, restaurants):
    ours, theirs = restaurants
    with tenant_context(ours):
        rows = list(StaffMember.objects.all())
    assert rows and {row.restaurant_id for row in rows} == {ours.pk}
    with tenant_context(theirs):
        assert StaffMember.objects.filter(pk=rows[0].pk).count() == 0


def test_create_fills_the_restaurant_from_the_context(restaurants):
    ours, _ = restaurants
    with tenant_context(ours):
        member = StaffMember.objects.create(email="new@ours.example.com", role=Role.CASHIER)
    assert member.restaurant_id == ours.pk


def test_create_refuses_another_restaurant(restaurants):
    ours, theirs = restaurants
    with tenant_context(ours), pytest.raises(TenantMismatch):
        StaffMember.objects.create(restaurant=theirs, email="x@y.example.com", role=Role.OWNER)


def test_saving_a_foreign_object_is_refused(roster, restaurants):
    foreign = roster[("theirs", "owner")]
    foreign.name = "hijacked"
    with tenant_context(restaurants[0]), pytest.raises(TenantMismatch):
        foreign.save()


def test_bulk_create_fills_and_checks(restaurants):
    ours, theirs = restaurants
    with tenant_context(ours):
        OpeningHours.objects.bulk_create([OpeningHours(weekday=0, opens="09:00", closes="17:00")])
        assert OpeningHours.objects.get().restaurant_id == ours.pk
        with pytest.raises(TenantMismatch):
            OpeningHours.objects.bulk_create(
                [OpeningHours(restaurant=theirs, weekday=1, opens="09:00", closes="17:00")]
            )


def test_context_is_reset_after_an_error(restaurants):
    ours, _ = restaurants
    with pytest.raises(ZeroDivisionError), tenant_context(ours):
        _ = 1 / 0
    assert current_restaurant_or_none() is None
    with pytest.raises(TenantNotSet):
        StaffMember.objects.count()


@pytest.mark.django_db(transaction=True)
def test_bypass_is_explicit_and_sees_everyone(roster):
    """As the platform role, on its own connection: what is committed."""
    with tenant_bypass():
        assert StaffMember.objects.count() == len(roster)
    with pytest.raises(TenantNotSet):
        StaffMember.objects.count()


def test_a_thread_does_not_inherit_the_context(restaurants):
    """Background work must enter the context itself; forgetting fails loudly."""
    ours, _ = restaurants
    errors: list[BaseException] = []

    def work():
        try:
            StaffMember.objects.count()
        except BaseException as error:  # collected for the assertion below
            errors.append(error)

    with tenant_context(ours):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert len(errors) == 1 and isinstance(errors[0], TenantNotSet)


def test_nested_context_restores_the_outer_one(restaurants):
    ours, theirs = restaurants
    make_staff(ours)
    make_staff(theirs)
    with tenant_context(ours):
        with tenant_context(theirs):
            assert {m.restaurant_id for m in StaffMember.objects.all()} == {theirs.pk}
        assert {m.restaurant_id for m in StaffMember.objects.all()} == {ours.pk}


def test_a_row_cannot_point_at_another_restaurants_row(roster, restaurants):
    ours, _ = restaurants
    with tenant_context(ours):
        member = StaffMember(email="fk@example.com", role=Role.KITCHEN)
        member.invited_by = roster[("theirs", "owner")]
        with pytest.raises(TenantMismatch, match="invited_by"):
            member.save()
        member.invited_by = None
        member.invited_by_id = roster[("theirs", "owner")].pk  # by id: the row is looked up
        with pytest.raises(TenantMismatch, match="invited_by"):
            member.save()
        member.invited_by = roster[("ours", "owner")]
        member.save()
    assert member.pk is not None
