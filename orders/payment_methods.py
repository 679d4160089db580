"""How an order is paid: each method says whether a restaurant offers it and what state a
new order starts in. Card payment registers itself here (payments/), nothing else changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orders.models import PaymentMethod, Status
from tenants.models import Restaurant


class PaymentFlow(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def label(self) -> str: ...
    # The status a new order starts in: "placed" when nothing is owed online yet.
    @property
    def initial_status(self) -> str: ...

    def offered(self, restaurant: Restaurant) -> bool: ...

    # Optional: ``on_cancelled(order)``, called once an order paid this way was cancelled and
    # the cancellation committed (outside any transaction and tenant context), to stop what
    # the method started elsewhere (card payment cancels the order's PaymentIntent). Errors
    # are logged, never raised: the cancellation stands.

    # Optional: ``settle_unpaid(order) -> "cancel" | "paid" | "wait"``, asked by
    # ``expire-unpaid-orders`` (outside any transaction) before it cancels an order still
    # waiting for its payment: "paid" when it was paid after all (the method has placed it),
    # "wait" when a payment is under way or its state cannot be learned now (the next run
    # asks again), "cancel" when nothing was paid and nothing can be any more (the method
    # has stopped its payment first). Without it, the order is cancelled.


@dataclass(frozen=True)
class PayInPerson:
    method: str = PaymentMethod.IN_PERSON
    label: str = "Pay at pickup"
    initial_status: str = Status.PLACED

    def offered(self, restaurant: Restaurant) -> bool:
        return True


_FLOWS: dict[str, PaymentFlow] = {}


def register(flow: PaymentFlow) -> None:
    _FLOWS[flow.method] = flow


def get(method: str) -> PaymentFlow | None:
    return _FLOWS.get(method)


def offered(restaurant: Restaurant) -> list[PaymentFlow]:
    return [flow for flow in _FLOWS.values() if flow.offered(restaurant)]


register(PayInPerson())
