"""Background work for orders. Tasks take a restaurant id and enter its context themselves."""

from __future__ import annotations

import logging

from django.tasks import task

from nordkestrel.mail import describe_error
from orders.emails import MAILER, order_email_for
from tenants.context import tenant_context
from tenants.models import Restaurant

logger = logging.getLogger(__name__)


@task
def send_order_email(*, restaurant_id: int, order_id: int, event: str) -> None:
    """Runs after the order's transaction commits, so a failure here never touches the order.

    A failure is logged and fails the task; it is not retried here. Sending again (a worker's
    retry, an operator re-enqueueing) is safe: the email carries an idempotency key, so Resend
    delivers it once.
    """
    try:
        restaurant = Restaurant.objects.get(pk=restaurant_id)
        with tenant_context(restaurant):
            message = order_email_for(restaurant=restaurant, order_id=order_id, event=event)
        # Sent outside the transaction: no database connection waits on Resend.
        if message is not None:
            message.send(using=MAILER)
    except Exception as error:
        logger.error(
            "Order email not sent: %s",
            describe_error(error),
            extra={"restaurant_id": restaurant_id, "order_id": order_id, "event": event},
        )
        raise
