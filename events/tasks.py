"""The task that hands committed events to their subscribers."""

from __future__ import annotations

from django.tasks import task

from events.dispatch import deliver


@task
def deliver_events(*, restaurant_id: int, event_ids: list[str]) -> dict[str, int]:
    """Run every subscriber of the given events of one restaurant that has not had them yet.

    A subscriber that fails is recorded, and tried again by a task deferred to its next
    attempt (where the queue can defer; the periodic redelivery otherwise); it does not fail
    this task, and the other subscribers still run."""
    outcome = deliver(restaurant_id=restaurant_id, event_ids=event_ids)
    if outcome.retry_at is not None and deliver_events.get_backend().supports_defer:
        deliver_events.using(run_after=outcome.retry_at).enqueue(
            restaurant_id=restaurant_id, event_ids=event_ids
        )
    return outcome.as_dict()
