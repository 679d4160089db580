"""The API key credential: ``Authorization: Bearer nk_...`` on the API, never the dashboard.

Admission (staff/access.py runs it like the Clerk session's):

1. The header's key is checked offline (pattern, this deployment's environment, CRC32); a
   key that fails is refused before any query.
2. Its SHA-256 is looked up by ``nordkestrel_api_key(digest)``, a database function that
   answers for that one key across restaurants (the application role cannot cross them),
   then the key's creator and restaurant are read inside the restaurant's context: two
   queries when cold. A process then answers for the key from memory for
   ``API_KEY_CACHE_SECONDS`` (5 s): no query when warm, and a revoked key stops working
   everywhere within those seconds (at once in the process that revoked it).
3. The key must be active (not revoked, not expired; after a roll the previous secret until
   its overlap ends), its creator still active staff, the caller's address in its ranges.
   Every refusal of the key itself answers exactly as a forged token does (401
   ``invalid_token``, the same detail); an address outside the ranges is 403.
4. The actor acts for the key's creator with the key's grants, never more than the creator's
   role allows now; audited actions name the key, and through it the creator.
5. One Redis round trip counts the use against the key's rate limit (``RateLimit-*``
   headers on the answer, 429 past it) and marks the key used (apikeys/usage.py).
"""

from __future__ import annotations

import ipaddress
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone

from apikeys import grants, tokens, usage
from nordkestrel.dbrouting import current_connection
from nordkestrel.middleware import client_ip
from nordkestrel.ratelimit import RateLimitExceeded
from staff.access import Credential, CredentialRefused, FrontDoor, register
from staff.auth import Actor
from staff.models import StaffMember
from staff.roles import Scope, scopes_for
from tenants.context import TenantScope
from tenants.models import Restaurant

# Exactly what a forged Clerk token gets (staff/clerk.py), so a key's refusal tells nothing.
REFUSED_CODE = "invalid_token"
REFUSED_DETAIL = "The token is malformed or its signature does not verify."
MEMO_MAX = 10_000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ApiKeyActor(Actor):
    """The creator's access narrowed to the key's grants (and to the creator's role now)."""

    key_id: int = 0
    key_name: str = ""
    key_last4: str = ""
    granted: frozenset[Scope] = field(default_factory=frozenset)

    @property
    def scopes(self) -> frozenset[Scope]:
        return self.granted & scopes_for(self.member.role)

    @property
    def via_api_key(self) -> bool:
        return True

    def identity(self) -> dict[str, object]:
        """Who is calling, as ``/me`` tells a key: the key, not its creator's details."""
        return {"api_key_id": self.key_id, "name": self.key_name, "last4": self.key_last4}

    def refusal(self, scope: Scope) -> str:
        return f"This API key does not hold the scope {scope.value}."

    def audit_actor(self) -> dict[str, Any]:
        """The audit log's actor: the key, and through it the person who created it."""
        member = self.member
        label = f"API key {self.key_name} (…{self.key_last4}) of {member.label}"
        return {
            "actor_type": "api_key",
            "actor_id": self.key_id,
            "actor_clerk_user_id": member.clerk_user_id or "",
            "actor_role": str(member.role),
            "actor_label": label[:254],
        }


@dataclass(frozen=True)
class Entry:
    """What the lookup found for one secret, kept for ``API_KEY_CACHE_SECONDS``."""

    key_id: int
    restaurant_id: int
    name: str
    last4: str
    granted: frozenset[Scope]
    valid_until: datetime
    networks: tuple[Network, ...]
    rate_limit: int
    member: StaffMember
    restaurant: Restaurant


_memo: dict[str, tuple[Entry, float]] = {}


def forget(*digests: str | None) -> None:
    """Drop keys from this process's memory at once (after a revoke or a roll)."""
    for digest in digests:
        if digest:
            _memo.pop(digest, None)


def _clone(instance: Model) -> Any:
    """A fresh copy of a cached row, so no request changes what another one reads."""
    names = [f.attname for f in instance._meta.concrete_fields]
    return type(instance).from_db(
        instance._state.db, names, [getattr(instance, name) for name in names]
    )


LOOKUP = (
    "SELECT key_id, restaurant_id, member_id, name, last4, grants, expires_at, revoked_at,"
    " previous, previous_expires_at, allowed_ips, rate_limit FROM nordkestrel_api_key(%s)"
)


def _lookup(digest: str, scope: TenantScope) -> Entry | None:
    with current_connection().cursor() as cursor:
        cursor.execute(LOOKUP, [digest])
        row = cursor.fetchone()
    if row is None:
        return None
    (key_id, restaurant_id, member_id, name, last4, granted, expires_at, revoked_at,
     previous, previous_expires_at, allowed_ips, rate_limit) = row  # fmt: skip
    if revoked_at is not None:
        return None
    # Django reads jsonb as text on a plain cursor (its fields decode it).
    granted, allowed_ips = _json(granted), _json(allowed_ips)
    valid_until = expires_at
    if previous:
        valid_until = min(expires_at, previous_expires_at or expires_at)
    scope.enter(Restaurant(pk=restaurant_id))
    member = StaffMember.objects.select_related("restaurant").filter(pk=member_id).first()
    if member is None:
        return None
    return Entry(
        key_id=key_id,
        restaurant_id=restaurant_id,
        name=name,
        last4=last4,
        granted=grants.scopes_of(granted or {}),
        valid_until=valid_until,
        networks=tuple(ipaddress.ip_network(value, strict=False) for value in allowed_ips or ()),
        rate_limit=rate_limit or int(settings.API_KEY_RATE_LIMIT),
        member=member,
        restaurant=member.restaurant,
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _entry(digest: str, scope: TenantScope) -> Entry | None:
    clock = time.monotonic()
    memo = _memo.get(digest)
    if memo is not None and clock < memo[1]:
        scope.enter(Restaurant(pk=memo[0].restaurant_id))
        return memo[0]
    entry = _lookup(digest, scope)
    if entry is not None:
        if len(_memo) >= MEMO_MAX:
            _memo.clear()
        _memo[digest] = (entry, clock + float(settings.API_KEY_CACHE_SECONDS))
    return entry


def _allowed(networks: tuple[Network, ...], ip: str) -> bool:
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def refused() -> CredentialRefused:
    return CredentialRefused(REFUSED_CODE, REFUSED_DETAIL)


@register
class ApiKeyCredential(Credential):
    """An integrator's key: ``Authorization: Bearer nk_<env>_...``, API only."""

    front_doors = frozenset({FrontDoor.API})
    order = 10  # before the Clerk session, which answers for every Authorization header
    challenge = "Bearer"
    openapi_name = "ApiKey"
    openapi_scheme = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "nk_<env>_<random>_<checksum>",
        "description": "An API key the restaurant's Owner or Admin created (README, Integrators).",
    }

    request: HttpRequest | None = None

    def read(self, request: HttpRequest, door: FrontDoor) -> str | None:
        keyword, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        token = token.strip()
        if keyword != self.challenge or not token.startswith(tokens.PREFIX):
            return None
        self.request = request
        return token

    def authenticate(self, credential: str, scope: TenantScope) -> Actor:
        if not tokens.well_formed(credential):
            raise refused()
        entry = _entry(tokens.digest(credential), scope)
        if entry is None or entry.valid_until <= timezone.now():
            raise refused()
        member = _clone(entry.member)
        member.restaurant = _clone(entry.restaurant)
        if not member.active:
            raise refused()
        if member.restaurant.status == Restaurant.Status.SUSPENDED:
            raise CredentialRefused("restaurant_suspended", "This restaurant is suspended.", 403)
        scope.refine(member.restaurant)
        request = self.request
        ip = client_ip(request) if request is not None else ""
        if not _allowed(entry.networks, ip):
            raise CredentialRefused(
                "ip_not_allowed", "This API key may not be used from this address.", 403
            )
        quota = usage.count_use(entry.key_id, entry.restaurant_id, entry.rate_limit, ip)
        if request is not None and quota is not None:
            request.api_key_quota = quota  # type: ignore[attr-defined]
            if quota.exceeded:
                raise RateLimitExceeded(retry_after=quota.reset)
        return ApiKeyActor(
            member=member,
            key_id=entry.key_id,
            key_name=entry.name,
            key_last4=entry.last4,
            granted=entry.granted,
        )


def forget_restaurant(restaurant_id: int) -> None:
    """Drop a restaurant's keys from this process's memory (its settings changed)."""
    for digest, (entry, _) in list(_memo.items()):
        if entry.restaurant_id == restaurant_id:
            _memo.pop(digest, None)
