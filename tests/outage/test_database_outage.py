"""PostgreSQL stopped, frozen or too slow under a live web process (granian, production
settings): every answer comes in bounded time, as 503 ``database_unavailable`` with
``Retry-After`` (JSON on the API, a page elsewhere); ``/healthz`` stays 200 and ``/readyz``
says 503 at once; the same process serves again when the database is back; and a checkout
retried with its Idempotency-Key gives exactly one complete order, never half of one.

Bounds are generous (the point is "does not hang for the outage"): the outages last longer
than any bound asserted during them.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from orders.models import OrderSequence
from tenants.context import tenant_context
from tests.factories import token_for
from tests.outage.conftest import assert_unavailable, checkout_body, orders_of
from tests.support.liveserver import Reply

CHECKOUT = "/api/v1/storefront/checkout"
# The longest a request may take while the database does not answer: a web process waits
# at most its connection timeout (3 s), or a statement's bound (5 s + 2 s) when the database
# froze under a query. Generous, for a loaded CI machine.
ANSWERED_WITHIN = 12.0
# /readyz bounds its own checks to about 3 s.
READYZ_WITHIN = 4.5
OUTAGE_SECONDS = 20.0

pytestmark = pytest.mark.django_db(transaction=True)


def checkout(web, shop, key: str, **options):
    return web.request(
        "POST",
        CHECKOUT,
        host=shop["host"],
        body=checkout_body(shop),
        headers={"Idempotency-Key": key},
        **options,
    )


def staff_headers(shop) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(shop['owner'])}"}


def wait_until_ready(web, seconds: float = 20.0) -> None:
    """Recovery: the same server process says ready again, without a restart."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if web.request("GET", "/readyz", timeout=10).status == 200:
            return
        time.sleep(0.5)
    pytest.fail(f"/readyz did not recover within {seconds} s:\n{web.log()[-3000:]}")


def assert_one_complete_order(shop, *keys: str) -> None:
    """Exactly one order per key, each with every line of its cart."""
    orders = orders_of(shop)
    assert [key for key, _, _ in orders] == list(keys)
    for _, total, lines in orders:
        assert lines == [("Burger", 2), ("Fries", 1)]
        assert total == 2 * 1200 + 450


def assert_serves_again(web, shop) -> None:
    wait_until_ready(web)
    assert web.request("GET", "/api/v1/orders", headers=staff_headers(shop)).status == 200
    page = web.request("GET", "/", host=shop["host"])
    assert page.status == 200


def test_a_stopped_database(web, pg_proxy, shop):
    assert checkout(web, shop, "before").status == 201
    pg_proxy.refusing()

    reply = checkout(web, shop, "during")
    assert_unavailable(reply)
    assert reply.seconds < ANSWERED_WITHIN
    assert_unavailable(web.request("GET", "/api/v1/orders", headers=staff_headers(shop)))
    # A storefront page and a dashboard page: readable pages, not JSON.
    assert_unavailable(web.request("GET", "/", host=shop["host"]), api=False)
    dashboard = web.request(
        "GET", "/dashboard/orders", headers={"Cookie": f"__session={token_for(shop['owner'])}"}
    )
    assert_unavailable(dashboard, api=False)
    assert web.request("GET", "/healthz").status == 200
    ready = web.request("GET", "/readyz")
    assert (ready.status, ready.json()["failing"]) == (503, ["database"])
    assert ready.seconds < READYZ_WITHIN
    assert "Traceback" not in web.log(), web.log()

    pg_proxy.normal()
    assert_serves_again(web, shop)
    retried = checkout(web, shop, "during")
    assert retried.status == 201, retried.text
    assert checkout(web, shop, "during").status == 200  # the same order again
    assert_one_complete_order(shop, "before", "during")


def test_a_frozen_database(web, pg_proxy, shop):
    assert checkout(web, shop, "before").status == 201  # the process now holds a connection
    assert web.request("GET", "/api/v1/orders", headers=staff_headers(shop)).status == 200
    pg_proxy.silent()
    frozen_at = time.monotonic()

    # A diner's checkout and a probe arrive together: the probe waits at most for the
    # checkout ahead of it on the one blocking thread, never for the outage.
    replies: dict[str, Reply] = {}
    diner = threading.Thread(target=lambda: replies.update(checkout=checkout(web, shop, "during")))
    diner.start()
    time.sleep(0.5)
    health = web.request("GET", "/healthz")
    diner.join()
    assert health.status == 200
    assert health.seconds < ANSWERED_WITHIN
    reply = replies["checkout"]
    assert_unavailable(reply)
    assert reply.seconds < ANSWERED_WITHIN

    ready = web.request("GET", "/readyz")
    assert (ready.status, ready.json()["failing"]) == (503, ["database"])
    assert ready.seconds < READYZ_WITHIN
    for _ in range(3):  # later requests are told at once: no new wait per request
        again = checkout(web, shop, "during")
        assert_unavailable(again)
        assert again.seconds < ANSWERED_WITHIN
    assert_unavailable(web.request("GET", "/", host=shop["host"]), api=False)
    assert web.request("GET", "/healthz").status == 200
    assert time.monotonic() - frozen_at < OUTAGE_SECONDS, "the bounds must end before it"

    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - frozen_at)))
    pg_proxy.normal()
    assert_serves_again(web, shop)
    assert checkout(web, shop, "during").status == 201
    assert_one_complete_order(shop, "before", "during")


def _blocked_on_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%%last_number%%'"
        )
        return cursor.fetchone()[0] > 0


def _cut_session_open() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND state = 'idle in transaction' AND query LIKE '%%last_number%%'"
        )
        return cursor.fetchone()[0] > 0


class NumberLock:
    """Holds the restaurant's order-number row, which a checkout updates last, just before
    its commit: a checkout waits there with every other row of its order written."""

    def __init__(self, restaurant) -> None:
        self.restaurant = restaurant
        self.release = threading.Event()
        self.held = threading.Event()
        self._thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        try:
            with tenant_context(self.restaurant):
                OrderSequence.objects.select_for_update().get()
                self.held.set()
                self.release.wait(30)
        finally:
            connection.close()

    def __enter__(self) -> NumberLock:
        self._thread.start()
        assert self.held.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self._thread.join()


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_checkout_cut_off_before_its_commit_leaves_nothing(web, pg_proxy, shop):
    assert checkout(web, shop, "first").status == 201

    # Too slow: the checkout waits for a lock past the lock timeout, and is rolled back.
    with NumberLock(shop["restaurant"]):
        reply = checkout(web, shop, "cut")
    assert_unavailable(reply, code="write_conflict")
    assert reply.seconds < ANSWERED_WITHIN
    assert_one_complete_order(shop, "first")

    # Frozen before the commit: the lock is released while nothing reaches the server's
    # client, which gives up on its own bound and never sends COMMIT.
    replies: dict[str, Reply] = {}
    with NumberLock(shop["restaurant"]) as lock:
        diner = threading.Thread(target=lambda: replies.update(cut=checkout(web, shop, "cut")))
        diner.start()
        wait_for(_blocked_on_lock)
        pg_proxy.silent()
        lock.release.set()
    diner.join()
    assert_unavailable(replies["cut"])
    assert replies["cut"].seconds < ANSWERED_WITHIN
    pg_proxy.normal()
    wait_until_ready(web)
    wait_for(lambda: not _cut_session_open())  # the server has seen the client go
    assert_one_complete_order(shop, "first")

    # The diner's retry with the same key: one order, with all its lines.
    assert checkout(web, shop, "cut").status == 201
    assert checkout(web, shop, "cut").status == 200
    assert_one_complete_order(shop, "first", "cut")
