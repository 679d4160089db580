from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import models

from audit import registry
from audit.models import AuditEvent


@dataclass(frozen=True)
class AuditFilters:
    action: str | None = None  # exact ("staff.invited") or a family ("staff.")
    actor: str | None = None  # a staff id, a Clerk user id, or a system actor's name
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def filter_events(queryset: models.QuerySet, filters: AuditFilters) -> models.QuerySet:
    if filters.action:
        if filters.action.endswith("."):
            queryset = queryset.filter(action__startswith=filters.action)
        else:
            queryset = queryset.filter(action=filters.action)
    if filters.actor:
        by_actor = models.Q(actor_clerk_user_id=filters.actor) | models.Q(actor_type=filters.actor)
        if filters.actor.isascii() and filters.actor.isdigit() and len(filters.actor) <= 18:
            by_actor |= models.Q(actor_id=int(filters.actor))
        queryset = queryset.filter(by_actor)
    if filters.target_type:
        queryset = queryset.filter(target_type=filters.target_type)
    if filters.target_id:
        queryset = queryset.filter(target_id=filters.target_id)
    if filters.since:
        queryset = queryset.filter(occurred_at__gte=filters.since)
    if filters.until:
        queryset = queryset.filter(occurred_at__lt=filters.until)
    return queryset


def describe(event: AuditEvent) -> str:
    try:
        template = registry.get(event.action).template
    except LookupError:
        return event.action
    return template.format(actor=event.actor_label, target=event.target_label or "—")
