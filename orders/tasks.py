"""Background work for orders. Tasks take a restaurant id and enter its context themselves."""

from __future__ import annotations

import logging

from django.core.mail import EmailMessage
from django.tasks import task

from nordkestrel.mail import describe_error
from orders.emails import MAILER, order_email_for
from tenants.context import tenant_context
from tenants.models import Restaurant

logger = logging.getLogger(__name__)


@task
def send_order_email(*, restaurant_id: int, order_id: int, event: str) -> None:
    """An order email sent again (the event bus sends the first, ``orders.notifications``).

    A failure is logged and fails the task. Sending again is safe: the email carries an
    idempotency key, so Resend delivers it once.
    """
    try:
        restaurant = Restaurant.objects.get(pk=restaurant_id)
        with tenant_context(restaurant):
            message = order_email_for(restaurant=restaurant, order_id=order_id, event=event)
    except Exception as error:
        log_failure(error, restaurant_id=restaurant_id, order_id=order_id, event=event)
        raise
    # Sent outside the transaction: no database connection waits on Resend.
    if message is not None:
        send_order_message(message, restaurant_id=restaurant_id, order_id=order_id, event=event)


def send_order_message(
    message: EmailMessage, *, restaurant_id: int, order_id: int, event: str
) -> None:
    try:
        message.send(using=MAILER)
    except Exception as error:
        log_failure(error, restaurant_id=restaurant_id, order_id=order_id, event=event)
        raise


def log_failure(error: Exception, *, restaurant_id: int, order_id: int, event: str) -> None:
    logger.error(
        "Order email not sent: %s",
        describe_error(error),
        extra={"restaurant_id": restaurant_id, "order_id": order_id, "event": event},
    )
