import io
import itertools
import json
import threading
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit import registry
from audit import services as audit
from audit.models import AppendOnlyError, AuditAnchor, AuditEvent
from nordkestrel.dbrouting import current_connection
from staff import services as staff_services
from staff.auth import Actor
from staff.roles import Role
from tenants.context import platform_context, tenant_context
from tests.factories import api_client, make_staff, run_concurrently, token_for

pytestmark = pytest.mark.django_db


def events(restaurant):
    with tenant_context(restaurant):
        return list(AuditEvent.objects.order_by("sequence"))


def write(restaurant, count, action=registry.STAFF_UPDATED):
    with tenant_context(restaurant):
        for _ in range(count):
            audit.record(action, actor=audit.SYSTEM, target_type="test", target_id="1")


def verify(slug):
    out = io.StringIO()
    try:
        call_command("audit_verify", restaurant=slug, stdout=out)
    except CommandError:
        return False, out.getvalue()
    return True, out.getvalue()


class TestRegistry:
    def test_a_duplicate_action_is_refused(self):
        with pytest.raises(registry.DuplicateAction):
            registry.register("staff.invited", "again")

    def test_promised_actions_are_registered(self):
        promised = {
            "staff.invited", "staff.role_changed", "staff.deactivated",
            "restaurant.settings_changed", "menu.published", "payment.refunded",
            "payout.triggered", "domain.added", "domain.removed", "export.created",
            "integration.connected", "restaurant.deletion_requested",
        }  # fmt: skip
        assert promised <= set(registry.names())

    def test_unknown_actions_cannot_be_recorded(self, restaurants):
        with tenant_context(restaurants[0]), pytest.raises(LookupError):
            audit.record("staff.teleported", actor=audit.SYSTEM)


class TestOneEventPerAction:
    def test_each_staff_action_writes_exactly_one_event(self, roster, restaurants):
        ours = restaurants[0]
        owner = Actor(member=roster[("ours", "owner")])
        cashier = roster[("ours", "cashier")]
        with tenant_context(ours):
            invited = staff_services.staff_invite(
                actor=owner, email="n@example.com", name="N", role="kitchen"
            )
            staff_services.staff_update(actor=owner, member=cashier, role=Role.MANAGER)
            staff_services.staff_update(actor=owner, member=cashier, name="Renamed")
            staff_services.staff_update(actor=owner, member=cashier, name="Renamed")  # no-op
            staff_services.staff_deactivate(actor=owner, member=invited)
        log = events(ours)
        assert [e.action for e in log] == [
            "staff.invited", "staff.role_changed", "staff.updated", "staff.deactivated",
        ]  # fmt: skip
        role_change = log[1]
        assert role_change.changes == {"role": {"before": "cashier", "after": "manager"}}
        assert (role_change.actor_type, role_change.actor_id, role_change.actor_role) == (
            "staff", owner.member.pk, "owner",
        )  # fmt: skip
        assert role_change.actor_clerk_user_id == owner.member.clerk_user_id
        assert (role_change.target_type, role_change.target_id) == (
            "staff.staffmember", str(cashier.pk),
        )  # fmt: skip
        assert events(restaurants[1]) == []

    def test_an_action_that_rolls_back_leaves_no_event(self, roster, restaurants):
        ours = restaurants[0]
        owner = Actor(member=roster[("ours", "owner")])

        def request_that_fails_after_the_invitation():
            with tenant_context(ours), transaction.atomic():
                staff_services.staff_invite(
                    actor=owner, email="r@example.com", name="", role="kitchen"
                )
                raise RuntimeError("the rest of the request failed")

        with pytest.raises(RuntimeError):
            request_that_fails_after_the_invitation()
        assert events(ours) == []

    def test_a_failing_audit_write_fails_the_action(self, roster, restaurants, monkeypatch):
        ours = restaurants[0]
        owner = Actor(member=roster[("ours", "owner")])

        def broken(*args, **kwargs):
            raise DatabaseError("audit table unavailable")

        monkeypatch.setattr(audit, "record", broken)
        with pytest.raises(DatabaseError), tenant_context(ours):
            staff_services.staff_invite(actor=owner, email="f@example.com", name="", role="kitchen")
        with tenant_context(ours):
            from staff.models import StaffMember

            assert not StaffMember.objects.filter(email="f@example.com").exists()

    def test_api_requests_record_ip_user_agent_and_request_id(self, roster, restaurants):
        client = api_client(roster[("ours", "admin")])
        response = client.patch(
            reverse("api-restaurant"),
            data=json.dumps({"phone": "+358 1"}),
            content_type="application/json",
            HTTP_USER_AGENT="till/1.0",
        )
        assert response.status_code == 200
        (event,) = events(restaurants[0])
        assert event.action == "restaurant.settings_changed"
        assert event.changes == {"phone": {"before": "", "after": "+358 1"}}
        assert (event.ip, event.user_agent, event.request_id) == (
            "127.0.0.1", "till/1.0", response["X-Request-ID"],
        )  # fmt: skip

    @pytest.mark.parametrize(
        ("remote", "stored"),
        [
            ("::ffff:1.2.3.4", "1.2.3.4"),
            ("2001:0db8:0000::0001", "2001:db8::1"),
            ("fe80::1%eth0", "fe80::1"),
            ("203.0.113.9", "203.0.113.9"),
        ],
    )
    def test_client_addresses_survive_the_round_trip(self, roster, restaurants, remote, stored):
        client = api_client(roster[("ours", "admin")])
        client.patch(
            reverse("api-restaurant"), data=json.dumps({"phone": "1"}),
            content_type="application/json", REMOTE_ADDR=remote,
        )  # fmt: skip
        (event,) = events(restaurants[0])
        assert event.ip == stored
        assert verify("ours")[0]

    def test_odd_values_in_changes_survive_the_round_trip(self, restaurants):
        with tenant_context(restaurants[0]):
            audit.record(
                registry.STAFF_UPDATED,
                actor=audit.SYSTEM,
                changes={"n": {"before": 1e16, "after": -0.0}, "big": {"before": 1.5e300,
                         "after": {"nested_token": "x", "list": [1.5]}}},
            )  # fmt: skip
        (event,) = events(restaurants[0])
        assert event.changes["big"]["after"]["nested_token"] == "[masked]"
        assert verify("ours")[0]

    def test_secrets_are_masked(self, restaurants):
        with tenant_context(restaurants[0]):
            event = audit.record(
                registry.INTEGRATION_CONNECTED,
                actor=audit.SYSTEM,
                changes={"access_token": {"before": None, "after": "sk_live_1"}},
            )
        assert event.changes == {"access_token": {"before": "[masked]", "after": "[masked]"}}

    @pytest.mark.django_db(transaction=True)
    def test_outside_a_transaction_is_refused(self, restaurants):
        # In autocommit the event would stay even if the action then failed.
        from tenants.context import _restaurant

        token = _restaurant.set(restaurants[0])
        try:
            with pytest.raises(RuntimeError, match="inside the action's transaction"):
                audit.record(registry.STAFF_UPDATED, actor=audit.SYSTEM)
        finally:
            _restaurant.reset(token)


class TestAppendOnly:
    def test_python_refuses_changes(self, restaurants):
        write(restaurants[0], 1)
        with tenant_context(restaurants[0]):
            event = AuditEvent.objects.get()
            event.action = "staff.invited"
            with pytest.raises(AppendOnlyError):
                event.save()
            with pytest.raises(AppendOnlyError):
                event.delete()
            with pytest.raises(AppendOnlyError):
                AuditEvent.objects.update(action="x")
            with pytest.raises(AppendOnlyError):
                AuditEvent.objects.all().delete()

    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE audit_auditevent SET action = 'staff.invited'",
            "DELETE FROM audit_auditevent",
            "TRUNCATE audit_auditevent",
            "UPDATE audit_auditanchor SET hash = ''",
            "TRUNCATE audit_auditanchor",
        ],
    )
    @pytest.mark.django_db(transaction=True)  # committed rows, as in production
    def test_raw_sql_as_the_application_role_fails(self, restaurants, sql):
        """The application role holds no UPDATE, DELETE or TRUNCATE privilege on the log."""
        write(restaurants[0], 2)
        with (
            pytest.raises(DatabaseError, match="permission denied"),
            tenant_context(restaurants[0]),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
        assert len(events(restaurants[0])) == 2

    def test_the_prune_setting_alone_cannot_delete_recent_events(self, restaurants):
        """The old ``app.audit_prune`` switch opens nothing: the application role still may
        not delete."""
        write(restaurants[0], 1)
        with tenant_context(restaurants[0]), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('app.audit_prune', 'on', true)")
            with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
                cursor.execute("DELETE FROM audit_auditevent")
        assert len(events(restaurants[0])) == 1

    @pytest.mark.django_db(transaction=True)  # the platform role sees what is committed
    def test_the_platform_role_cannot_delete_recent_events(self, restaurants):
        """The platform role may delete, but the trigger refuses any event within retention."""
        write(restaurants[0], 2)
        with (
            pytest.raises(DatabaseError, match="append-only"),
            platform_context(restaurants[0]),
            current_connection().cursor() as cursor,
        ):
            cursor.execute(
                "DELETE FROM audit_auditevent WHERE restaurant_id = %s", [restaurants[0].pk]
            )
        assert len(events(restaurants[0])) == 2


# Tampering happens on another (superuser) connection, which sees only committed rows.
@pytest.mark.django_db(transaction=True)
class TestChain:
    def test_a_clean_chain_verifies(self, restaurants):
        write(restaurants[0], 5)
        write(restaurants[1], 3)
        ok, out = verify("ours")
        assert ok, out
        assert "5 events, chain intact" in out
        log = events(restaurants[0])
        assert log[0].prev_hash == ""
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(log))

    @pytest.mark.parametrize(
        ("tamper", "broken_at", "reason"),
        [
            ("UPDATE audit_auditevent SET actor_label = 'someone else' "
             "WHERE restaurant_id = {r} AND sequence = 3", "#3", "contents changed"),
            ("DELETE FROM audit_auditevent WHERE restaurant_id = {r} AND sequence = 3",
             "#3", "missing"),
            ("UPDATE audit_auditevent SET sequence = 100 "
             "WHERE restaurant_id = {r} AND sequence = 2;"
             "UPDATE audit_auditevent SET sequence = 2 WHERE restaurant_id = {r} AND sequence = 4;"
             "UPDATE audit_auditevent SET sequence = 4 WHERE restaurant_id = {r} "
             "AND sequence = 100",
             "#2", "prev_hash does not match"),
            ("UPDATE audit_auditevent SET changes = '{{\"role\": 1}}' "
             "WHERE restaurant_id = {r} AND sequence = 5", "#5", "contents changed"),
        ],
    )  # fmt: skip
    def test_tampering_is_named(self, restaurants, privileged_sql, tamper, broken_at, reason):
        write(restaurants[0], 5)
        ours = restaurants[0]
        privileged_sql(tamper.format(r=ours.pk))
        ok, out = verify("ours")
        assert not ok
        assert f"ours: BROKEN at event {broken_at}" in out
        assert reason in out

    def test_an_inserted_row_is_named(self, restaurants, privileged_sql):
        write(restaurants[0], 3)
        ours = restaurants[0]
        forged = events(ours)[1]
        for shift in (1000, -999):  # make room at #2 without colliding on the way
            privileged_sql(
                "UPDATE audit_auditevent SET sequence = sequence + %s "
                "WHERE restaurant_id = %s AND sequence >= 2",
                [shift, ours.pk],
            )
        privileged_sql(
            "INSERT INTO audit_auditevent (restaurant_id, sequence, occurred_at, action, "
            "actor_type, actor_clerk_user_id, actor_role, actor_label, target_type, target_id, "
            "target_label, changes, ip, user_agent, request_id, prev_hash, hash) VALUES "
            "(%s, 2, now(), 'staff.invited', 'system', '', '', 'x', '', '', '', '{}', '', '', "
            "'', %s, %s)",
            [ours.pk, forged.prev_hash, "0" * 64],
        )
        ok, out = verify("ours")
        assert not ok
        assert "BROKEN at event #2" in out

    def test_command_exit_status(self, restaurants, privileged_sql):
        write(restaurants[0], 2)
        call_command("audit_verify", stdout=io.StringIO())
        privileged_sql(
            "DELETE FROM audit_auditevent WHERE restaurant_id = %s AND sequence = 1",
            [restaurants[0].pk],
        )
        with pytest.raises(CommandError, match="ours"):
            call_command("audit_verify", stdout=io.StringIO())

    def test_twenty_concurrent_writers_leave_a_valid_chain(self, restaurants):
        ours = restaurants[0]
        barrier = threading.Barrier(20)

        def writer():
            with tenant_context(ours):
                barrier.wait(timeout=20)
                return audit.record(registry.STAFF_UPDATED, actor=audit.SYSTEM)

        written = run_concurrently(*[writer] * 20)
        assert all(isinstance(event, AuditEvent) for event in written), written
        assert [e.sequence for e in events(ours)] == list(range(1, 21))
        assert verify("ours")[0]


@pytest.mark.django_db(transaction=True)
class TestPruning:
    def test_prune_keeps_the_chain_verifiable_and_is_recorded(self, restaurants, privileged_sql):
        ours = restaurants[0]
        write(ours, 6)
        old = timezone.now() - timedelta(days=400)
        privileged_sql(
            "UPDATE audit_auditevent SET occurred_at = %s WHERE restaurant_id = %s "
            "AND sequence <= 4",
            [old, ours.pk],
        )
        # Back-dating changed what was hashed; re-seal those rows as if written back then.
        with tenant_context(ours):
            prev = ""
            for event in AuditEvent.objects.order_by("sequence"):
                event.prev_hash = prev
                digest = audit.event_hash(prev, event)
                privileged_sql(
                    "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE id = %s",
                    [prev, digest, event.pk],
                )
                prev = digest
        assert verify("ours")[0]
        out = io.StringIO()
        call_command("audit_prune", stdout=out)
        assert "ours: pruned 4 events" in out.getvalue()
        log = events(ours)
        assert [e.sequence for e in log] == [5, 6, 7]
        assert log[-1].action == "audit.pruned"
        assert log[-1].actor_type == "scheduler"
        with tenant_context(ours):
            assert AuditAnchor.objects.get().sequence == 4
        ok, text = verify("ours")
        assert ok, text
        # Dropping the newest events, the prune's own record among them, is noticed.
        privileged_sql(
            "DELETE FROM audit_auditevent WHERE restaurant_id = %s AND sequence = 7", [ours.pk]
        )
        ok, text = verify("ours")
        assert not ok
        assert "events after the pruning anchor are missing" in text
        privileged_sql("DELETE FROM audit_auditevent WHERE restaurant_id = %s", [ours.pk])
        ok, text = verify("ours")
        assert not ok
        assert "events after the pruning anchor are missing" in text
        return

    def test_nothing_recent_is_ever_pruned(self, restaurants):
        write(restaurants[0], 3)
        call_command("audit_prune", stdout=io.StringIO())
        assert [e.sequence for e in events(restaurants[0])] == [1, 2, 3]


class TestReading:
    def test_roles_below_admin_get_403(self, roster):
        for role in ("manager", "cashier", "kitchen"):
            response = api_client(roster[("ours", role)]).get(reverse("api-audit-events"))
            assert response.status_code == 403

    def test_filters_and_timezone(self, roster, restaurants):
        ours = restaurants[0]
        Restaurant = type(ours)
        Restaurant.objects.filter(pk=ours.pk).update(timezone="Europe/Helsinki")
        owner = Actor(member=roster[("ours", "owner")])
        with tenant_context(ours):
            staff_services.staff_invite(actor=owner, email="a@example.com", name="", role="kitchen")
            staff_services.staff_deactivate(actor=owner, member=roster[("ours", "kitchen")])
            audit.record(registry.PAYOUT_TRIGGERED, actor=audit.SYSTEM)
        write(restaurants[1], 3)
        client = api_client(roster[("ours", "admin")])

        def actions(**params):
            body = client.get(reverse("api-audit-events"), params).json()
            return [row["action"] for row in body["results"]]

        assert actions() == ["payout.triggered", "staff.deactivated", "staff.invited"]
        assert actions(action="staff.") == ["staff.deactivated", "staff.invited"]
        assert actions(action="staff.invited") == ["staff.invited"]
        assert actions(actor=owner.member.clerk_user_id) == ["staff.deactivated", "staff.invited"]
        assert actions(actor="system") == ["payout.triggered"]
        assert actions(
            target_type="staff.staffmember", target_id=roster[("ours", "kitchen")].pk
        ) == ["staff.deactivated"]
        future = (timezone.now() + timedelta(hours=1)).isoformat()
        assert actions(since=future) == []
        assert len(actions(until=future)) == 3
        row = client.get(reverse("api-audit-events")).json()["results"][0]
        assert row["occurred_at_local"].endswith(("+02:00", "+03:00"))
        assert row["description"] == "system triggered a payout"

    def test_odd_actor_filters_are_harmless(self, roster):
        client = api_client(roster[("ours", "owner")])
        assert client.get(reverse("api-audit-events"), {"actor": "²"}).status_code == 200
        signed = Client()
        signed.cookies["__session"] = token_for(roster[("ours", "owner")])
        assert signed.get("/dashboard/audit", {"actor": "²"}).status_code == 200
        assert signed.get("/dashboard/audit", {"until": "9999-12-31"}).status_code == 400

    @pytest.mark.parametrize(
        "params",
        [{"since": "yesterday"}, {"since": "2026-02-01T00:00Z", "until": "2026-01-01T00:00Z"}],
    )
    def test_bad_filters_are_400(self, roster, params):
        response = api_client(roster[("ours", "owner")]).get(reverse("api-audit-events"), params)
        assert response.status_code == 400

    @pytest.mark.parametrize("rows", [1, 10_000])
    def test_listing_is_paginated_with_bounded_queries(
        self, roster, restaurants, rows, django_assert_max_num_queries
    ):
        ours = restaurants[0]
        now = timezone.now()
        with tenant_context(ours):
            prev = ""
            batch = []
            for sequence in range(1, rows + 1):
                event = AuditEvent(
                    sequence=sequence, occurred_at=now, action="staff.updated",
                    actor_type="system", actor_label="system", prev_hash=prev,
                )  # fmt: skip
                event.restaurant = ours
                event.hash = prev = audit.event_hash(prev, event)
                batch.append(event)
            AuditEvent.objects.bulk_create(batch, batch_size=2000)
        client = api_client(roster[("ours", "owner")])
        client.get(reverse("api-me"))
        with django_assert_max_num_queries(6):
            body = client.get(reverse("api-audit-events")).json()
        assert len(body["results"]) == min(rows, 50)
        assert (body["next"] is not None) is (rows > 50)
        if rows > 50:
            with django_assert_max_num_queries(6):
                second = client.get(body["next"]).json()
            assert second["results"][0]["sequence"] == rows - 50

    def test_dashboard_page_filters_and_shows_local_time(self, roster, restaurants):
        from django.test import Client

        from tests.factories import token_for

        ours = restaurants[0]
        type(ours).objects.filter(pk=ours.pk).update(timezone="Asia/Tokyo")
        write(ours, 2, registry.DOMAIN_ADDED)
        write(ours, 1, registry.STAFF_UPDATED)
        write(restaurants[1], 1, registry.PAYOUT_TRIGGERED)
        client = Client()
        client.cookies["__session"] = token_for(roster[("ours", "owner")])
        page = client.get("/dashboard/audit", {"action": "domain."}).content.decode()
        assert page.count("<code>domain.added</code>") == 2
        assert "staff.updated</code>" not in page
        assert "payout.triggered" not in page.split("<tbody>")[1]
        assert "Asia/Tokyo" in page
        with tenant_context(ours):
            newest = AuditEvent.objects.order_by("-sequence").first()
        assert newest is not None
        tokyo = newest.occurred_at.astimezone(ZoneInfo("Asia/Tokyo"))
        assert f">{tokyo:%Y-%m-%d %H:%M:%S}</time>" in page, "the row's time is Tokyo's, not UTC"
        assert client.get("/dashboard/audit", {"since": "not-a-date"}).status_code == 400
        kitchen = Client()
        kitchen.cookies["__session"] = token_for(roster[("ours", "kitchen")])
        assert kitchen.get("/dashboard/audit").status_code == 403


def test_invitation_claim_is_recorded_as_the_new_member(roster, restaurants):
    from django.test import Client

    from staff.dev import mint_token

    owner = Actor(member=roster[("ours", "owner")])
    with tenant_context(restaurants[0]):
        staff_services.staff_invite(actor=owner, email="j@example.com", name="J", role="cashier")
    token = mint_token(clerk_user_id="user_j", organization_id="org_ours", email="j@example.com")
    assert Client().get(reverse("api-me"), HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    joined = events(restaurants[0])[-1]
    assert (joined.action, joined.actor_clerk_user_id) == ("staff.joined", "user_j")


def test_staff_member_factory_is_unaffected(restaurants):
    # Creating staff directly (seed data, factories) writes no audit events.
    make_staff(restaurants[0])
    assert events(restaurants[0]) == []
