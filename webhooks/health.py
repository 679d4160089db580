"""An endpoint's health: disabled at once by a 410, or after failing for
``FAILING_DAYS`` days in a row, with a warning to the restaurant's Owners and Admins a day
before and an email when it happens."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.headerregistry import Address
from functools import partial

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from audit import registry
from audit import services as audit
from nordkestrel.mail import IDEMPOTENCY_ATTRIBUTE, describe_error
from staff.models import StaffMember
from staff.roles import Role
from tenants.context import tenant_bypass, tenant_context
from tenants.models import Restaurant
from webhooks.models import Delivery, Endpoint

logger = logging.getLogger(__name__)

FAILING_DAYS = 5
WARN_BEFORE = timedelta(days=1)
MAILER = "default"
REASONS: dict[str, str] = {
    Endpoint.Disabled.GONE: "it answered 410 Gone, which asks for no more deliveries",
    Endpoint.Disabled.FAILING: f"every delivery to it failed for {FAILING_DAYS} days",
}


def disable(endpoint: Endpoint, reason: str, actor: object = None) -> None:
    """Disable ``endpoint`` (in the caller's transaction, restaurant context): no more
    deliveries are made to it, those still owed fail (``recover`` sends them later), the
    change is audited, and when the platform disabled it the Owners and Admins are told."""
    now = timezone.now()
    Endpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False, disabled_reason=reason, disabled_at=now, failure_warned_at=None
    )
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason, now
    Delivery.objects.filter(endpoint=endpoint, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.FAILED,
        next_attempt_at=None,
        locked_until=None,
        last_error="The endpoint was disabled.",
    )
    audit.record(
        registry.WEBHOOK_ENDPOINT_DISABLED,
        actor=actor or audit.SYSTEM,  # type: ignore[arg-type]
        target=endpoint,
        changes={"reason": reason},
    )
    if reason in REASONS:
        restaurant = Restaurant.objects.get(pk=endpoint.restaurant_id)
        subject = f"{_name(restaurant)}: a webhook endpoint was disabled"
        body = (
            f"The webhook endpoint {endpoint.url} of {_name(restaurant)} was disabled because "
            f"{REASONS[reason]}.\n\nEvents are no longer sent to it. Once the receiver works "
            'again, enable the endpoint on the dashboard\'s Webhooks page and use "Recover" '
            "to send the deliveries that failed meanwhile (events are kept 30 days).\n"
        )
        key = f"webhook-disabled-{endpoint.pk}-{int(now.timestamp())}"
        transaction.on_commit(partial(_email, restaurant, subject, body, key))


def _name(restaurant: Restaurant) -> str:
    return " ".join(restaurant.name.split())


def _recipients() -> list[str]:
    return list(
        StaffMember.objects.filter(role__in=[Role.OWNER, Role.ADMIN], active=True)
        .order_by("pk")
        .values_list("email", flat=True)
    )


def _email(restaurant: Restaurant, subject: str, body: str, key: str) -> None:
    with tenant_context(restaurant):
        recipients = _recipients()
    if not recipients:
        return
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=str(Address(display_name="Nordkestrel", addr_spec=settings.EXPORTS_EMAIL_FROM)),
        to=recipients,
    )
    setattr(message, IDEMPOTENCY_ATTRIBUTE, key[:256])
    try:
        message.send(using=MAILER)
    except Exception as error:
        logger.error("Webhook endpoint email not sent: %s", describe_error(error))


def check_failing(now: datetime | None = None) -> tuple[int, int]:
    """Warn about endpoints a day from being disabled, and disable those failing for
    ``FAILING_DAYS`` days: (warned, disabled)."""
    now = now or timezone.now()
    limit = now - timedelta(days=FAILING_DAYS)
    with tenant_bypass():
        due = list(
            Endpoint.unscoped.filter(
                enabled=True, failing_since__isnull=False, failing_since__lte=limit + WARN_BEFORE
            )
            .order_by("restaurant_id", "pk")
            .values_list("restaurant_id", "pk")
        )
    warned = disabled = 0
    for restaurant_id, endpoint_id in due:
        with tenant_context(Restaurant(pk=restaurant_id)):
            endpoint = (
                Endpoint.objects.select_for_update(no_key=True)
                .filter(pk=endpoint_id, enabled=True, failing_since__isnull=False)
                .first()
            )
            if endpoint is None or endpoint.failing_since is None:
                continue
            if endpoint.failing_since <= limit:
                disable(endpoint, Endpoint.Disabled.FAILING, audit.SCHEDULER)
                disabled += 1
            elif endpoint.failure_warned_at is None:
                Endpoint.objects.filter(pk=endpoint.pk).update(failure_warned_at=now)
                restaurant = Restaurant.objects.get(pk=restaurant_id)
                subject = f"{_name(restaurant)}: a webhook endpoint is failing"
                body = (
                    f"Every delivery to the webhook endpoint {endpoint.url} of "
                    f"{_name(restaurant)} has failed since "
                    f"{timezone.localtime(endpoint.failing_since, restaurant.zone):%Y-%m-%d %H:%M} "
                    f"({restaurant.zone.key}). Unless one succeeds within a day, the endpoint "
                    "will be disabled. The dashboard's Webhooks page shows each attempt and "
                    "the receiver's answer.\n"
                )
                key = f"webhook-failing-{endpoint.pk}-{int(endpoint.failing_since.timestamp())}"
                transaction.on_commit(partial(_email, restaurant, subject, body, key))
                warned += 1
    return warned, disabled
