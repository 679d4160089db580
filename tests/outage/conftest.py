"""Fixtures of the fault suite: a live granian server whose PostgreSQL and Redis are reached
through fault proxies (tests/support/faultproxy.py), and a restaurant to order from.

Each test stages its outage on its own proxies, so the shared services never pause. Data is
committed (``transactional_db``) for the server process to see it; the test database is
flushed afterwards as usual.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import require_service
from tests.support.faultproxy import FaultProxy
from tests.support.liveserver import LiveServer

ERROR_KEYS = {"type", "code", "detail", "attr"}


@pytest.fixture
def pg_proxy(transactional_db):
    database = connection.settings_dict
    proxy = FaultProxy((database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432))).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def redis_proxy():
    require_service("Redis (REDIS_URL)", bool(settings.REDIS_URL))
    target = urlsplit(settings.REDIS_URL)
    proxy = FaultProxy((target.hostname or "127.0.0.1", target.port or 6379)).start()
    yield proxy
    proxy.stop()


def database_url(port: int) -> str:
    database = connection.settings_dict
    user = quote(database["USER"] or "", safe="")
    password = f":{quote(database['PASSWORD'], safe='')}" if database["PASSWORD"] else ""
    return f"postgres://{user}{password}@127.0.0.1:{port}/{database['NAME']}"


def redis_url(port: int) -> str:
    return f"redis://127.0.0.1:{port}{urlsplit(settings.REDIS_URL).path}"


@pytest.fixture
def web(pg_proxy, redis_proxy):
    """The application under granian, with the production server's thread model (one
    blocking thread), reaching PostgreSQL and Redis only through the proxies."""
    with LiveServer(
        database_url=database_url(pg_proxy.port), redis_url=redis_url(redis_proxy.port)
    ) as server:
        yield server


@pytest.fixture
def shop(transactional_db):
    """A restaurant open every day 08:00-22:00 with a published menu, and a second one."""
    from tests.factories import make_restaurant, make_shop, open_all_week

    ours = make_restaurant(f"outage-{uuid.uuid4().hex[:8]}")
    make_restaurant(f"other-{uuid.uuid4().hex[:8]}")
    open_all_week(ours)
    ids = make_shop(ours)
    ids["restaurant"] = ours
    ids["host"] = f"{ours.slug}.{settings.STOREFRONT_DOMAIN}"
    return ids


def checkout_body(shop: dict) -> dict:
    """Two lines, picked up tomorrow at noon: inside opening hours whenever the test runs."""
    zone = ZoneInfo(shop["restaurant"].timezone)
    tomorrow = datetime.now(zone).date() + timedelta(days=1)
    return {
        "lines": [
            {"item_id": shop["burger"], "quantity": 2, "modifier_ids": [shop["regular"]]},
            {"item_id": shop["fries"], "quantity": 1},
        ],
        "scheduled_for": datetime.combine(tomorrow, time(12, 0), zone).isoformat(),
        "name": "Ada Lovelace",
        "email": "ada@example.com",
    }


def orders_of(shop: dict) -> list[tuple[str, int, list[tuple[str, int]]]]:
    """Every order of the shop's restaurant: (idempotency key, total, [(line, quantity)])."""
    from orders.models import Order
    from tenants.context import tenant_context

    with tenant_context(shop["restaurant"]):
        return [
            (
                order.idempotency_key,
                order.total,
                [(line.name, line.quantity) for line in order.lines.order_by("position")],
            )
            for order in Order.objects.order_by("pk")
        ]


def assert_unavailable(reply, *, code: str = "database_unavailable", api: bool = True) -> None:
    """503 with Retry-After: the error shape on the API, a readable page elsewhere."""
    assert reply.status == 503, (reply.status, reply.text[:500])
    assert int(reply.headers["retry-after"]) > 0
    if api:
        assert reply.headers["content-type"] == "application/json"
        body = reply.json()
        assert set(body) == ERROR_KEYS
        assert (body["type"], body["code"]) == ("unavailable", code)
    else:
        assert reply.headers["content-type"].startswith("text/html")
        assert "try again" in reply.text.lower()
