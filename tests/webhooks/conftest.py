from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from nordkestrel import events
from staff.auth import Actor
from tenants.context import tenant_context
from webhooks import addresses, services, transport
from webhooks.models import Attempt, Delivery, Endpoint
from webhooks.sender import Job, Sender, send
from webhooks.services import IssuedEndpoint


@pytest.fixture
def dns(monkeypatch):
    """A DNS of the test's own: names → addresses (nothing goes to a real resolver)."""
    table: dict[str, list[str]] = {}

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return list(table[host])

    monkeypatch.setattr(addresses, "resolver", resolve)
    return table


def run_async[T](make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine ``make()`` returns to its end, in a thread of its own: once a browser
    test ran, Playwright's event loop holds the test thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def attempt(url: str, payload: bytes = b'{"type":"x"}') -> transport.Answer:
    """One attempt at ``url`` as the sender makes it (its checks, then the request), outside
    any delivery."""
    job = Job(
        delivery_id=1,
        restaurant_id=1,
        endpoint_id=1,
        message_id="msg_1",
        url=url,
        keys=["whsec_" + "A" * 43 + "="],
        payload=payload,
    )
    return run_async(lambda: send(job))


def send_due(**options) -> int:
    """Run a sender until nothing is due or in flight; the attempts it made."""
    return run_async(lambda: Sender(**options).run(until_idle=True))


@pytest.fixture
def public_only(settings):
    """As in production: https only, and only globally routable addresses."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False


def actor_of(member) -> Actor:
    return Actor(member=member)


def make_endpoint(member, url: str, **fields) -> IssuedEndpoint:
    """An endpoint created by ``member`` (a person: the scopes of their role)."""
    with tenant_context(member.restaurant):
        return services.endpoint_create(actor=actor_of(member), url=url, **fields)


def publish(restaurant, *published: events.Event) -> None:
    with tenant_context(restaurant):
        events.publish(*published)


def deliveries(restaurant, **filters) -> list[Delivery]:
    with tenant_context(restaurant):
        return list(Delivery.objects.filter(**filters).order_by("created_at", "id"))


def attempts(restaurant, **filters) -> list[Attempt]:
    """Oldest first."""
    with tenant_context(restaurant):
        return list(Attempt.objects.filter(**filters).order_by("attempted_at", "id"))


def endpoint_of(restaurant, pk: int) -> Endpoint:
    with tenant_context(restaurant):
        return Endpoint.objects.get(pk=pk)


def wait_passes(restaurant, **filters) -> int:
    """The scheduled wait of the pending deliveries is over: their next attempt is due now
    (the database's own record moved, not the clock of the code that reads it)."""
    with tenant_context(restaurant):
        return Delivery.objects.filter(
            status=Delivery.Status.PENDING, next_attempt_at__isnull=False, **filters
        ).update(next_attempt_at=timezone.now())


def audited(restaurant, action: str) -> list[AuditEvent]:
    with tenant_context(restaurant):
        return list(AuditEvent.objects.filter(action=action).order_by("sequence"))
