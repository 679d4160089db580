"""Writing down what an attempt came to (the delivery log), and what follows from it: the
delivery's next attempt, the endpoint's run of failures, a 410's disabling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils import timezone

from tenants.context import tenant_context
from tenants.models import Restaurant
from webhooks import health, messages
from webhooks.models import Attempt, Delivery, Endpoint
from webhooks.transport import Answer

if TYPE_CHECKING:
    from webhooks.sender import Job


def record(job: Job, answer: Answer) -> None:
    """In the restaurant's context, one transaction: the attempt, the delivery's state, the
    endpoint's. Locks the endpoint, then the delivery (the order every writer keeps)."""
    now = timezone.now()
    with tenant_context(Restaurant(pk=job.restaurant_id)):
        endpoint = (
            Endpoint.objects.select_for_update(no_key=True).filter(pk=job.endpoint_id).first()
        )
        delivery = (
            Delivery.objects.select_for_update(no_key=True).filter(pk=job.delivery_id).first()
        )
        if endpoint is None or delivery is None:  # deleted meanwhile
            return
        Attempt.objects.create(
            delivery=delivery,
            endpoint=endpoint,
            attempted_at=now,
            trigger=Attempt.Trigger.MANUAL if job.manual else Attempt.Trigger.AUTOMATIC,
            status_code=answer.status,
            error=_text(answer.error)[:500],
            duration_ms=answer.duration_ms,
            response_body=_text(answer.body),
        )
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.last_status_code = answer.status
        delivery.last_error = _text(answer.error)[:500]
        delivery.locked_until = None
        if answer.succeeded:
            delivery.status, delivery.next_attempt_at = Delivery.Status.SUCCEEDED, None
        else:
            retry = None
            if not job.manual and answer.status != 410 and job.payload is not None:
                retry = messages.next_attempt(delivery.attempts, now, answer.retry_after)
            delivery.next_attempt_at = retry
            delivery.status = Delivery.Status.PENDING if retry else Delivery.Status.FAILED
        delivery.manual = False
        delivery.save()
        if job.payload is not None:  # an attempt that reached for the endpoint
            _endpoint_health(endpoint, answer, now)


def _text(value: str) -> str:
    """What the receiver sent, storable: PostgreSQL text holds no NUL character."""
    return value.replace("\x00", "\ufffd")


def _endpoint_health(endpoint: Endpoint, answer: Answer, now: object) -> None:
    if answer.succeeded:
        if endpoint.failing_since is not None or endpoint.failure_warned_at is not None:
            Endpoint.objects.filter(pk=endpoint.pk).update(
                failing_since=None, failure_warned_at=None
            )
        return
    if answer.status == 410 and endpoint.enabled:
        health.disable(endpoint, Endpoint.Disabled.GONE)
    elif endpoint.failing_since is None:
        Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=now)
