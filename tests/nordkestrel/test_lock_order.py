"""Ordinary staff writes of one restaurant, sent at the same moment, all succeed.

A change to the restaurant's settings or opening hours locks the restaurant row and then
the audit chain; every other audited write takes the audit chain and, at COMMIT, the key
share on the restaurant row that its foreign keys need. Held in the project's lock order
(nordkestrel/locks.py) these never wait on each other in a circle: no deadlock, no 500.
Each round starts both requests through the whole HTTP stack at once (a barrier), with
real transactions, many times over.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client

from audit.models import AuditEvent
from nordkestrel import locks
from promotions.models import Promotion
from staff.models import StaffMember
from tenants.context import tenant_context
from tenants.models import OpeningHours, Restaurant
from tests.factories import run_concurrently, token_for

ROUNDS = 25
Send = Callable[[Client, int], object]


def _client(member: StaffMember) -> Client:
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {token_for(member)}")


def rename(client: Client, round_: int) -> object:
    return client.patch(
        "/api/v1/restaurant",
        json.dumps({"name": f"Ours {round_}"}),
        content_type="application/json",
    )


def replace_hours(client: Client, round_: int) -> object:
    body = {
        "weekly": [{"weekday": round_ % 7, "opens": "09:00", "closes": f"{12 + round_ % 10}:00"}],
        "exceptions": [],
    }
    return client.put(
        "/api/v1/restaurant/opening-hours", json.dumps(body), content_type="application/json"
    )


def create_promotion(client: Client, round_: int) -> object:
    body = {"code": f"ROUND{round_}", "kind": "percent", "value": 10}
    return client.post("/api/v1/promotions", json.dumps(body), content_type="application/json")


def invite_staff(client: Client, round_: int) -> object:
    body = {"email": f"cook{round_}@ours.example.com", "name": f"Cook {round_}", "role": "kitchen"}
    return client.post("/api/v1/staff", json.dumps(body), content_type="application/json")


def race(member: StaffMember, first: Send, second: Send) -> list[tuple[int, int, str, str]]:
    """Run ``first`` and ``second`` together ROUNDS times; return every non-2xx answer as
    (round, status, content type, start of the body)."""
    failures: list[tuple[int, int, str, str]] = []
    for round_ in range(ROUNDS):
        barrier = threading.Barrier(2, timeout=30)

        def call(send: Send, round_: int = round_, barrier: threading.Barrier = barrier) -> object:
            client = _client(member)
            barrier.wait()
            return send(client, round_)

        for response in run_concurrently(lambda: call(first), lambda: call(second)):
            status = getattr(response, "status_code", None)
            if status is None:
                failures.append((round_, 0, "", repr(response)[:200]))
            elif status >= 300:
                content_type = response.get("Content-Type", "")
                body = response.content.decode(errors="replace")[:200]
                failures.append((round_, status, content_type, body))
    return failures


def chain_intact(restaurant: Restaurant) -> bool:
    output = io.StringIO()
    call_command("audit_verify", restaurant=restaurant.slug, stdout=output)
    return "chain intact" in output.getvalue()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("first", "second"),
    [
        (rename, create_promotion),
        (rename, invite_staff),
        (replace_hours, create_promotion),
    ],
    ids=["settings+promotion", "settings+invitation", "opening-hours+promotion"],
)
def test_two_staff_writes_at_the_same_moment_both_succeed(roster, restaurants, first, second):
    ours = restaurants[0]
    owner = roster[("ours", "owner")]

    failures = race(owner, first, second)

    assert failures == [], f"{len(failures)} of {2 * ROUNDS} writes failed: {failures[:3]}"
    with tenant_context(ours):
        if first is rename:
            assert Restaurant.objects.get(pk=ours.pk).name == f"Ours {ROUNDS - 1}"
        else:
            assert OpeningHours.objects.count() == 1
        if second is create_promotion:
            assert Promotion.objects.count() == ROUNDS
        else:
            assert StaffMember.objects.filter(email__startswith="cook").count() == ROUNDS
        # Every write is in the audit log once, and the chain never forked.
        assert AuditEvent.objects.count() == 2 * ROUNDS
    assert chain_intact(ours)
    assert Restaurant.objects.get(pk=restaurants[1].pk).name == restaurants[1].name


def test_every_advisory_lock_has_a_number_of_its_own():
    declared = [value for value in vars(locks).values() if isinstance(value, locks.LockClass)]
    assert set(declared) == set(locks.ALL)
    assert len({lock.number for lock in locks.ALL}) == len(locks.ALL)


def test_a_lock_is_taken_only_the_way_its_level_is_held(transactional_db):
    with pytest.raises(ValueError, match="held by a session"), transaction.atomic():
        locks.lock_for_transaction(locks.RESTAURANT_PURGE, 1)
    with pytest.raises(ValueError, match="held by a transaction"):
        locks.try_session_lock(locks.AUDIT_CHAIN, 1, connection=connection)
    with pytest.raises(RuntimeError, match="open one first"):
        locks.lock_for_transaction(locks.AUDIT_CHAIN, 1)
