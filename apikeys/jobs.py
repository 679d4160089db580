"""The keys' background work: recording when keys were last used, and expiry warnings."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.headerregistry import Address

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import Q
from django.utils import timezone

from apikeys import usage
from apikeys.models import ApiKey
from nordkestrel.mail import IDEMPOTENCY_ATTRIBUTE, describe_error
from staff.models import StaffMember
from staff.roles import Role
from tenants.context import tenant_bypass, tenant_context
from tenants.models import Restaurant

logger = logging.getLogger(__name__)

WARN_DAYS = 7
MAILER = "default"


def record_usage() -> int:
    """Move the last-used marks into ``last_used_at``, each restaurant in its own context.
    A mark older than what the row holds changes nothing."""
    recorded = 0
    for restaurant_id, uses in usage.take_uses().items():
        with tenant_context(Restaurant(pk=restaurant_id)):
            for key_id, use in uses.items():
                recorded += ApiKey.objects.filter(
                    Q(last_used_at__isnull=True) | Q(last_used_at__lt=use.at), pk=key_id
                ).update(last_used_at=use.at, last_used_ip=use.ip)
    return recorded


def _due(now: datetime) -> Q:
    return Q(
        revoked_at__isnull=True,
        expires_at__gt=now,
        expires_at__lte=now + timedelta(days=WARN_DAYS),
        expiry_warned_at__isnull=True,
    )


def warn_expiring() -> int:
    """Email each restaurant's Owners about its keys that expire within 7 days, once per key
    and expiry (a roll sets a new expiry and so a new warning)."""
    now = timezone.now()
    with tenant_bypass():
        restaurant_ids = sorted(
            set(ApiKey.unscoped.filter(_due(now)).values_list("restaurant_id", flat=True))
        )
    warned = 0
    for restaurant_id in restaurant_ids:
        with tenant_context(Restaurant(pk=restaurant_id)):
            restaurant = Restaurant.objects.get(pk=restaurant_id)
            keys = list(
                ApiKey.objects.select_for_update(skip_locked=True)
                .filter(_due(now))
                .order_by("expires_at")
            )
            owners = list(
                StaffMember.objects.filter(role=Role.OWNER, active=True).values_list(
                    "email", flat=True
                )
            )
            ApiKey.objects.filter(pk__in=[key.pk for key in keys]).update(expiry_warned_at=now)
        if keys and owners:
            _send(restaurant, keys, owners)
        warned += len(keys)
    return warned


def _send(restaurant: Restaurant, keys: list[ApiKey], owners: list[str]) -> None:
    name = " ".join(restaurant.name.split())
    lines = [
        f"- {key.name} (…{key.last4}), expires "
        f"{timezone.localtime(key.expires_at, restaurant.zone):%Y-%m-%d %H:%M} "
        f"({restaurant.zone.key})"
        for key in keys
    ]
    body = (
        f"These API keys of {name} expire within {WARN_DAYS} days:\n\n"
        + "\n".join(lines)
        + "\n\nRoll a key on the dashboard's API keys page (Settings, API keys) to give it a "
        "new secret and expiry; the integration using it keeps working while you switch it "
        "over during the overlap you choose.\n"
    )
    message = EmailMessage(
        subject=f"{name}: {len(keys)} API key(s) expire soon",
        body=body,
        from_email=str(Address(display_name="Nordkestrel", addr_spec=settings.EXPORTS_EMAIL_FROM)),
        to=owners,
    )
    stamp = "-".join(f"{key.pk}.{int(key.expires_at.timestamp())}" for key in keys)
    setattr(message, IDEMPOTENCY_ATTRIBUTE, f"api-key-expiry-{restaurant.pk}-{stamp}"[:256])
    try:
        message.send(using=MAILER)
    except Exception as error:
        logger.error("API key expiry warning not sent: %s", describe_error(error))
