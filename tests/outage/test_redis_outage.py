"""Redis stopped or frozen under a live web process: the menu is still served (from
PostgreSQL), checkouts still go through (their rate limits fail open, saying so in the log),
nothing answers 500 or waits for the outage, ``/readyz`` names the cache, and counting
resumes when Redis is back, without a restart."""

from __future__ import annotations

import json
import time

import pytest

from tests.outage.conftest import checkout_body, orders_of

MENU = "/api/v1/storefront/menu"
CHECKOUT = "/api/v1/storefront/checkout"
ANSWERED_WITHIN = 10.0
READYZ_WITHIN = 4.5

pytestmark = pytest.mark.django_db(transaction=True)


def checkout(web, shop, key: str):
    return web.request(
        "POST",
        CHECKOUT,
        host=shop["host"],
        body=checkout_body(shop),
        headers={"Idempotency-Key": key},
    )


def log_lines(web) -> list[dict]:
    return [json.loads(line) for line in web.log().splitlines() if line.startswith("{")]


def assert_served_without_redis(web, shop, key: str) -> None:
    # The process checks the shared menu revision at most once a second: let it ask again.
    time.sleep(1.2)
    menu = web.request("GET", MENU, host=shop["host"])
    assert menu.status == 200
    assert menu.seconds < ANSWERED_WITHIN
    assert [m["name"] for m in menu.json()["menus"]] == ["All day"]
    page = web.request("GET", "/", host=shop["host"])
    assert (page.status, page.seconds < ANSWERED_WITHIN) == (200, True)
    placed = checkout(web, shop, key)
    assert placed.status == 201, placed.text
    assert placed.seconds < ANSWERED_WITHIN
    assert web.request("GET", "/healthz").status == 200
    ready = web.request("GET", "/readyz")
    assert (ready.status, ready.json()["checks"]) == (
        503,
        {"database": "ok", "cache": "unavailable"},
    )
    assert ready.seconds < READYZ_WITHIN
    messages = [line["message"] for line in log_lines(web)]
    assert "Rate limit checkout not counted, request allowed: its counter is unavailable" in (
        messages
    )
    assert [line for line in log_lines(web) if line.get("status") == 500] == []


def assert_recovers(web, shop, key: str) -> None:
    deadline = time.monotonic() + 20
    while web.request("GET", "/readyz").status != 200:
        assert time.monotonic() < deadline, web.log()[-3000:]
        time.sleep(0.5)
    assert checkout(web, shop, key).status == 201
    assert any(line["message"] == "redis answers again" for line in log_lines(web))


@pytest.mark.parametrize("fault", ["refusing", "silent"])
def test_redis_down(web, redis_proxy, shop, fault):
    assert web.request("GET", MENU, host=shop["host"]).status == 200
    assert checkout(web, shop, "before").status == 201
    getattr(redis_proxy, fault)()

    assert_served_without_redis(web, shop, "during")

    redis_proxy.normal()
    assert_recovers(web, shop, "after")
    assert [key for key, _, _ in orders_of(shop)] == ["before", "during", "after"]
