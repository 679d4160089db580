"""The customer events in the catalogue."""

from __future__ import annotations

from customers.models import Customer
from nordkestrel import events
from nordkestrel.events import ID, TEXT, TIMESTAMP, obj, restricted, timestamp
from staff.roles import Scope

CUSTOMER_CREATED = events.register(
    events.EventType(
        name="customer.created",
        version=1,
        scope=Scope.CUSTOMERS_READ,
        schema=obj(
            customer=obj(id=ID, created_at=TIMESTAMP),
            contact=restricted(Scope.CUSTOMERS_READ, obj(name=TEXT, email=TEXT, phone=TEXT)),
        ),
        description="A diner's first checkout at the restaurant created their customer record.",
    )
)


def created(customer: Customer) -> events.Event:
    return CUSTOMER_CREATED.new(
        restaurant_id=customer.restaurant_id,
        occurred_at=customer.created_at,
        payload={
            "customer": {"id": customer.pk, "created_at": timestamp(customer.created_at)},
            "contact": {"name": customer.name, "email": customer.email, "phone": customer.phone},
        },
    )
