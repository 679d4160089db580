"""Background work for orders. Tasks take a restaurant id and enter its context themselves."""

from __future__ import annotations

import logging

from django.tasks import task

from orders.emails import send_order_email_now
from tenants.context import tenant_context
from tenants.models import Restaurant

logger = logging.getLogger(__name__)


@task
def send_order_email(*, restaurant_id: int, order_id: int, event: str) -> None:
    restaurant = Restaurant.objects.get(pk=restaurant_id)
    with tenant_context(restaurant):
        send_order_email_now(restaurant=restaurant, order_id=order_id, event=event)
