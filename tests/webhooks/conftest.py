from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from webhooks import addresses
from webhooks.sender import Sender


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
    """Run a sender until nothing is due or in flight; the attempts it made. In a thread of
    its own: once a browser test ran, Playwright's event loop holds the test thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(Sender(**options).run(until_idle=True))).result()
