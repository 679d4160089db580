"""Reading settings from the environment, with one clear error for what is missing."""

from __future__ import annotations

import ipaddress
import os
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ImproperlyConfigured

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
FALSE_VALUES = frozenset({"0", "false", "no", "off", ""})


def get_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def get_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def get_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def get_decimal(name: str, default: str) -> Decimal:
    raw = os.environ.get(name)
    value = default if raw is None or not raw.strip() else raw.strip()
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name} must be a decimal number, got {raw!r}") from None
    if not number.is_finite():
        raise ImproperlyConfigured(f"{name} must be a finite number, got {raw!r}")
    return number


def get_seconds(name: str, default: float) -> float:
    """A duration in seconds (``2.5`` allowed); 0 where the setting allows "no limit"."""
    number = float(get_decimal(name, str(default)))
    if number < 0:
        raise ImproperlyConfigured(f"{name} must be 0 or more seconds, got {number}")
    return number


def get_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def get_networks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in get_list(name):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not an IP network") from None
    return networks


def require(names: list[str], *, environment: str) -> None:
    """Refuse to start when any of ``names`` is unset or empty."""
    missing = [name for name in names if not os.environ.get(name, "").strip()]
    if missing:
        raise ImproperlyConfigured(
            f"DJANGO_ENV={environment} requires these environment variables: {', '.join(missing)}"
        )
