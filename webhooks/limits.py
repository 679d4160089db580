"""The per-restaurant limits on creating endpoints and sending test messages: one count for
the API and the dashboard together."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from nordkestrel.ratelimit import OnOutage, limit

CREATE_RATE_GROUP = "webhook-endpoint-create"
TEST_RATE_GROUP = "webhook-endpoint-test"


def _count(request: HttpRequest, group: str, rate: str, restaurant_id: int) -> None:
    limit(
        request,
        group=group,
        rate=rate,
        key=lambda _group, _request: str(restaurant_id),
        # A few more endpoints or test messages while Redis is down cost little.
        on_outage=OnOutage.ALLOW,
    )


def count_create(request: HttpRequest, restaurant_id: int) -> None:
    """429 once the restaurant has created ``WEBHOOK_CREATE_RATE`` endpoints."""
    _count(request, CREATE_RATE_GROUP, settings.WEBHOOK_CREATE_RATE, restaurant_id)


def count_test(request: HttpRequest, restaurant_id: int) -> None:
    """429 once the restaurant has sent ``WEBHOOK_TEST_RATE`` test messages."""
    _count(request, TEST_RATE_GROUP, settings.WEBHOOK_TEST_RATE, restaurant_id)
