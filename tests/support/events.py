"""An event type and subscribers of the bus's own tests: what each subscriber was handed, and a
subscriber that fails while told to."""

from __future__ import annotations

from typing import Any

from nordkestrel import events
from nordkestrel.events import ID, TEXT, obj, restricted
from staff.roles import Scope
from tenants.context import current_restaurant

PINGED = events.register(
    events.EventType(
        name="test.pinged",
        version=1,
        scope=Scope.ORDERS_READ,
        schema=obj(n=ID, contact=restricted(Scope.CUSTOMERS_READ, obj(email=TEXT))),
        description="Published by the bus's tests only.",
    )
)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.failing = False

    def reset(self) -> None:
        self.seen.clear()
        self.failing = False


recorded = Recorder()
refusing = Recorder()


@events.subscriber("tests.recorder", PINGED)
def record(event: events.Event) -> None:
    recorded.seen.append({"n": event.payload["n"], "restaurant": current_restaurant().slug})


@events.subscriber("tests.refuser", PINGED)
def refuse(event: events.Event) -> None:
    refusing.seen.append({"n": event.payload["n"]})
    if refusing.failing:
        raise ConnectionError("the subscriber's service is down")


def ping(restaurant_id: int, n: int = 1) -> events.Event:
    return PINGED.new(restaurant_id=restaurant_id, payload={"n": n, "contact": {"email": "a@b.c"}})
