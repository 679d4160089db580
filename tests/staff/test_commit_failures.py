"""A request whose transaction fails at COMMIT answers in the API's error shape.

The staff API commits each request's transaction after DRF has answered (staff/api_base.py),
so what PostgreSQL raises at COMMIT (a deadlock, a serialization failure, a deferred
constraint) used to escape as a 500, or as Django's HTML debug page in development. Here
each failure is made real, at COMMIT, by a second connection doing what a concurrent
request would.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction
from django.test import Client

import audit.services as audit_services
from audit.models import AuditEvent
from nordkestrel import locks
from nordkestrel.api import exception_handler
from promotions.models import Promotion
from staff.models import StaffMember
from tenants.context import tenant_context
from tests.factories import api_client, make_staff, run_concurrently, token_for

ERROR_KEYS = {"type", "code", "detail", "attr"}


@pytest.fixture
def paused_audit(monkeypatch):
    """Each audited write stops right after writing its audit event (its transaction holds
    the audit chain and its rows, uncommitted) until the test lets it go on to COMMIT."""
    written, go_on = threading.Event(), threading.Event()
    record = audit_services.record

    def record_then_wait(*args, **kwargs):
        event = record(*args, **kwargs)
        written.set()
        assert go_on.wait(timeout=30)
        return event

    monkeypatch.setattr(audit_services, "record", record_then_wait)
    return written, go_on


def deadlock_timeout() -> timedelta:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('deadlock_timeout')::interval")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_deadlock_at_commit_answers_503_with_retry_after(roster, restaurants, paused_audit):
    ours = restaurants[0]
    written, go_on = paused_audit
    wait = deadlock_timeout()
    holds_row, asks_chain = threading.Event(), threading.Event()

    def request():
        assert holds_row.wait(timeout=30)
        body = {"code": "DEADLOCK", "kind": "percent", "value": 10}
        return api_client(roster[("ours", "manager")]).post(
            "/api/v1/promotions", json.dumps(body), content_type="application/json"
        )

    def out_of_order_writer():
        # What a writer that breaks the order does: the restaurant row FOR UPDATE (which the
        # request's foreign keys need in KEY SHARE at COMMIT), then the audit chain (which
        # the request holds).
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM tenants_restaurant WHERE id = %s FOR UPDATE", [ours.pk]
                )
            holds_row.set()
            assert written.wait(timeout=30)
            asks_chain.set()
            locks.lock_for_transaction(locks.AUDIT_CHAIN, ours.pk)
            transaction.set_rollback(True)

    def let_go():
        assert asks_chain.wait(timeout=30)
        # The writer's own deadlock check runs (and finds nothing) before the request
        # commits, so PostgreSQL's check that closes the circle is the request's: it is the
        # one aborted, at COMMIT.
        time.sleep(wait.total_seconds() + 1.5)
        go_on.set()

    response, writer, _ = run_concurrently(request, out_of_order_writer, let_go)

    assert writer is None, writer
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    assert int(response["Retry-After"]) >= 1
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert (body["type"], body["code"]) == ("unavailable", "write_conflict")
    with tenant_context(ours):
        assert not Promotion.objects.exists()
        assert not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_deferred_constraint_failing_at_commit_answers_409(roster, restaurants, paused_audit):
    ours = restaurants[0]
    written, go_on = paused_audit
    admin = make_staff(ours, "admin")

    def invite():
        body = {"email": "new@ours.example.com", "name": "New", "role": "kitchen"}
        return api_client(admin).post(
            "/api/v1/staff", json.dumps(body), content_type="application/json"
        )

    def remove_the_inviter():
        # The invitation's ``invited_by`` points at the admin; the key is checked at COMMIT.
        assert written.wait(timeout=30)
        with tenant_context(ours):
            StaffMember.objects.filter(pk=admin.pk).delete()
        go_on.set()

    response, removed = run_concurrently(invite, remove_the_inviter)

    assert removed is None, removed
    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert (body["type"], body["code"]) == ("conflict", "changed_meanwhile")
    with tenant_context(ours):
        assert not StaffMember.objects.filter(email="new@ours.example.com").exists()
        assert not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_dashboard_page_whose_commit_fails_answers_a_409_page(roster, restaurants, paused_audit):
    """The dashboard commits its page's transaction the same way; it answers with a page."""
    ours = restaurants[0]
    written, go_on = paused_audit
    admin = make_staff(ours, "admin")

    def invite():
        client = Client(raise_request_exception=False)
        client.cookies["__session"] = token_for(admin)
        body = {"action": "invite", "email": "new@ours.example.com", "role": "kitchen"}
        return client.post("/dashboard/staff", body)

    def remove_the_inviter():
        assert written.wait(timeout=30)
        with tenant_context(ours):
            StaffMember.objects.filter(pk=admin.pk).delete()
        go_on.set()

    response, removed = run_concurrently(invite, remove_the_inviter)

    assert removed is None, removed
    assert response.status_code == 409, response.content[:300]
    assert response["Content-Type"].startswith("text/html")
    assert b"changed or removed at the same moment" in response.content
    with tenant_context(ours):
        assert not StaffMember.objects.filter(email="new@ours.example.com").exists()


@pytest.mark.django_db(transaction=True)
def test_a_lock_wait_refused_inside_a_handler_answers_503(restaurants):
    """Raised before COMMIT (here a row lock not granted in time), the same failure goes
    through DRF's handler and answers the same way."""
    ours = restaurants[0]
    holding, done = threading.Event(), threading.Event()

    def holder():
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM tenants_restaurant WHERE id = %s FOR UPDATE", [ours.pk]
                )
            holding.set()
            assert done.wait(timeout=30)

    def waiter():
        assert holding.wait(timeout=30)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '50ms'")
                cursor.execute(
                    "SELECT 1 FROM tenants_restaurant WHERE id = %s FOR UPDATE", [ours.pk]
                )
        except OperationalError as error:
            return exception_handler(error, {})
        finally:
            done.set()
        return None

    _, response = run_concurrently(holder, waiter)

    assert response is not None
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert response.data["type"] == "unavailable"
    assert response.data["code"] == "write_conflict"
