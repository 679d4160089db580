from __future__ import annotations

import asyncio

import pytest

from tests.support.webhook_receiver import Receiver
from webhooks import addresses
from webhooks.sender import Sender


@pytest.fixture
def private_targets(settings):
    """Loopback and http targets allowed, as in development (production refuses this)."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def receiver(private_targets):
    server = Receiver().start()
    yield server
    server.stop()


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


def send_due(**options) -> int:
    """Run a sender until nothing is due or in flight; the attempts it made."""
    return asyncio.run(Sender(**options).run(until_idle=True))
