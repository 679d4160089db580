"""Creating, changing, rolling and revoking API keys; the restaurant's key settings.

Only a person signed in through Clerk manages keys (``Scope.API_KEYS_MANAGE``, which no key
can hold, and which asks for a recent second factor when the restaurant requires it). A key
never grants what its creator's role lacks. Every change is audited in the same transaction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apikeys import credentials, grants, tokens
from apikeys.models import ApiKey, ApiKeyRoute, ApiKeySettings, default_rate_limit
from audit import registry
from audit import services as audit
from nordkestrel.errors import ConflictError, InvalidInput, PermissionDeniedError
from staff.auth import Actor
from staff.roles import Scope
from tenants.models import Restaurant

DEFAULT_EXPIRY_DAYS = 90
MAX_EXPIRY_DAYS = 365
MAX_OVERLAP_HOURS = 7 * 24
DEFAULT_OVERLAP_HOURS = 24
MAX_ACTIVE_KEYS = 50
MAX_RANGES = 20
MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


@dataclass(frozen=True)
class IssuedKey:
    """A key and its secret, which is shown this once and never stored."""

    key: ApiKey
    secret: str = field(repr=False)


def normalise_ranges(values: Sequence[str]) -> list[str]:
    """CIDR ranges (a bare address is its own /32 or /128), each once, in a stable form."""
    if len(values) > MAX_RANGES:
        raise InvalidInput(f"At most {MAX_RANGES} address ranges.", attr="allowed_ips")
    ranges: list[str] = []
    for index, value in enumerate(values):
        try:
            # strict: 203.0.113.7/8 is a typo, not 203.0.0.0/8.
            network = ipaddress.ip_network(str(value).strip(), strict=True)
        except ValueError:
            raise InvalidInput(
                f"{value!r} is not an IP address or CIDR range with its host bits zero "
                "(e.g. 203.0.113.0/24).",
                code="invalid_ip_range",
                attr=f"allowed_ips.{index}",
            ) from None
        if network.prefixlen == 0:
            raise InvalidInput(
                "A range of every address allows anywhere; leave the list empty instead.",
                code="invalid_ip_range",
                attr=f"allowed_ips.{index}",
            )
        if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(MAPPED):
            # Clients are matched as IPv4 (credentials._allowed): store the range so too.
            network = ipaddress.ip_network(
                f"{ipaddress.IPv4Address(int(network.network_address) & 0xFFFFFFFF)}/"
                f"{network.prefixlen - 96}"
            )
        if str(network) not in ranges:
            ranges.append(str(network))
    return ranges


def _check_grants(actor: Actor, requested: Mapping[str, str]) -> dict[str, str]:
    for name, level in requested.items():
        resource = grants.RESOURCES.get(name)
        if resource is None:
            raise InvalidInput(f"No key can be granted {name!r}.", attr=f"grants.{name}")
        if level not in resource.levels:
            raise InvalidInput(
                f"{name} is one of: {', '.join(resource.levels)}.", attr=f"grants.{name}"
            )
    normal = grants.normalise(requested)
    if all(level == grants.RESOURCES[name].minimum for name, level in normal.items()):
        raise InvalidInput("Grant the key at least one resource.", code="no_grants", attr="grants")
    missing = grants.missing_from(normal, actor.scopes)
    if missing:
        raise InvalidInput(
            f"Your role cannot grant {missing[0]}: {normal[missing[0]]}; a key never holds "
            "more than its creator.",
            code="scope_not_held",
            attr=f"grants.{missing[0]}",
        )
    return normal


def _expiry(days: int) -> Any:
    if not 1 <= days <= MAX_EXPIRY_DAYS:
        raise InvalidInput(
            f"Keys expire within 1 to {MAX_EXPIRY_DAYS} days.", attr="expires_in_days"
        )
    return timezone.now() + timedelta(days=days)


def _active(now: Any) -> Q:
    return Q(revoked_at__isnull=True, expires_at__gt=now)


def key_create(
    *,
    actor: Actor,
    name: str,
    grants: Mapping[str, str],
    expires_in_days: int = DEFAULT_EXPIRY_DAYS,
    allowed_ips: Sequence[str] = (),
) -> IssuedKey:
    actor.require(Scope.API_KEYS_MANAGE)
    normal = _check_grants(actor, grants)
    ranges = normalise_ranges(allowed_ips)
    expires_at = _expiry(expires_in_days)
    # The restaurant row (lock level 3) makes the count of active keys exact.
    Restaurant.objects.locked(actor.restaurant.pk)
    if ApiKey.objects.filter(_active(timezone.now())).count() >= MAX_ACTIVE_KEYS:
        raise ConflictError(
            f"A restaurant has at most {MAX_ACTIVE_KEYS} active keys; revoke one first.",
            code="too_many_keys",
        )
    secret = tokens.generate()
    key = ApiKey.objects.create(
        name=name,
        secret_hash=tokens.digest(secret),
        last4=tokens.last4(secret),
        grants=normal,
        allowed_ips=ranges,
        created_by=actor.member,
        expires_at=expires_at,
    )
    ApiKeyRoute.objects.create(digest=key.secret_hash, restaurant=actor.restaurant, key_id=key.pk)
    audit.record(
        registry.API_KEY_CREATED,
        actor=actor,
        target=key,
        changes={
            "grants": {"before": None, "after": normal},
            "expires_at": {"before": None, "after": expires_at.isoformat()},
            "allowed_ips": {"before": None, "after": ranges},
        },
    )
    return IssuedKey(key, secret)


def _forget(*digests: str | None) -> None:
    """This process stops answering for these secrets from memory now and again once the
    change commits (a lookup in between could remember the state before it)."""
    credentials.forget(*digests)
    transaction.on_commit(lambda: credentials.forget(*digests))


def _locked(key: ApiKey) -> ApiKey:
    return ApiKey.objects.select_for_update(no_key=True).select_related("created_by").get(pk=key.pk)


def key_update(
    *, actor: Actor, key: ApiKey, name: str | None = None, allowed_ips: Sequence[str] | None = None
) -> ApiKey:
    actor.require(Scope.API_KEYS_MANAGE)
    key = _locked(key)
    before = {"name": key.name, "allowed_ips": key.allowed_ips}
    if name is not None:
        key.name = name
    if allowed_ips is not None:
        key.allowed_ips = normalise_ranges(allowed_ips)
    after = {"name": key.name, "allowed_ips": key.allowed_ips}
    changes = audit.diff(before, after)
    if changes:
        key.save(update_fields=["name", "allowed_ips"])
        _forget(key.secret_hash, key.previous_hash)
        audit.record(registry.API_KEY_UPDATED, actor=actor, target=key, changes=changes)
    return key


def key_roll(
    *,
    actor: Actor,
    key: ApiKey,
    overlap_hours: int = DEFAULT_OVERLAP_HOURS,
    expires_in_days: int = DEFAULT_EXPIRY_DAYS,
) -> IssuedKey:
    """A new secret; the current one keeps working for ``overlap_hours`` (0: ends now). A
    previous secret still in its overlap stops at once: at most two are ever valid."""
    actor.require(Scope.API_KEYS_MANAGE)
    if not 0 <= overlap_hours <= MAX_OVERLAP_HOURS:
        raise InvalidInput(
            f"The overlap is 0 to {MAX_OVERLAP_HOURS} hours (7 days).", attr="overlap_hours"
        )
    key = _locked(key)
    if key.created_by_id != actor.member.pk:
        # The new secret acts for the key's creator: only they may hold it. Anyone else
        # revokes the key and creates their own.
        raise PermissionDeniedError(
            "Only the person who created a key can roll it; revoke it and create a new one.",
            code="not_key_creator",
        )
    now = timezone.now()
    if key.status_at(now) != ApiKey.Status.ACTIVE:
        raise ConflictError("Only an active key can be rolled.", code="key_not_active")
    before = {
        "expires_at": key.expires_at.isoformat(),
        "previous_expires_at": key.previous_expires_at.isoformat()
        if key.previous_expires_at
        else None,
    }
    _check_grants(actor, key.grants)
    expires_at = _expiry(expires_in_days)
    forgotten = (key.secret_hash, key.previous_hash)
    secret = tokens.generate()
    key.previous_hash, key.previous_last4 = key.secret_hash, key.last4
    key.previous_expires_at = min(now + timedelta(hours=overlap_hours), key.expires_at)
    key.secret_hash, key.last4 = tokens.digest(secret), tokens.last4(secret)
    key.expires_at, key.rolled_at, key.expiry_warned_at = expires_at, now, None
    key.save()
    # Routes for the new secret and the one in its overlap; an earlier overlap ends here.
    ApiKeyRoute.objects.filter(key_id=key.pk).exclude(digest=key.previous_hash).delete()
    ApiKeyRoute.objects.create(digest=key.secret_hash, restaurant=actor.restaurant, key_id=key.pk)
    _forget(*forgotten)
    audit.record(
        registry.API_KEY_ROLLED,
        actor=actor,
        target=key,
        changes=audit.diff(
            before,
            {
                "expires_at": expires_at.isoformat(),
                "previous_expires_at": key.previous_expires_at.isoformat(),
            },
        ),
    )
    return IssuedKey(key, secret)


def key_revoke(*, actor: Actor, key: ApiKey) -> ApiKey:
    """The key stops working at once in this process, and everywhere within
    ``API_KEY_CACHE_SECONDS``. Revoking a revoked key changes nothing."""
    actor.require(Scope.API_KEYS_MANAGE)
    key = _locked(key)
    if key.revoked_at is not None:
        return key
    key.revoked_at, key.revoked_by = timezone.now(), actor.member
    key.save(update_fields=["revoked_at", "revoked_by"])
    ApiKeyRoute.objects.filter(key_id=key.pk).delete()
    _forget(key.secret_hash, key.previous_hash)
    audit.record(registry.API_KEY_REVOKED, actor=actor, target=key)
    return key


def key_settings() -> ApiKeySettings:
    """The restaurant's key settings (the defaults until an Owner or Admin changes them)."""
    return ApiKeySettings.objects.first() or ApiKeySettings(
        rate_limit_per_minute=default_rate_limit()
    )


def key_settings_update(*, actor: Actor, rate_limit_per_minute: int) -> ApiKeySettings:
    actor.require(Scope.API_KEYS_MANAGE)
    if not 10 <= rate_limit_per_minute <= 10_000:
        raise InvalidInput(
            "Between 10 and 10000 requests per minute.", attr="rate_limit_per_minute"
        )
    Restaurant.objects.locked(actor.restaurant.pk)
    current = key_settings()
    before = current.rate_limit_per_minute
    current.rate_limit_per_minute = rate_limit_per_minute
    current.save()
    if before != rate_limit_per_minute:
        credentials.forget_restaurant(actor.restaurant.pk)
        audit.record(
            registry.API_KEY_SETTINGS_CHANGED,
            actor=actor,
            changes={"rate_limit_per_minute": {"before": before, "after": rate_limit_per_minute}},
        )
    return current
