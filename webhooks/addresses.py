"""Where a webhook may go: the URL's rules, and the addresses a request may connect to.

Checked when an endpoint is saved and again at every attempt: the host is resolved, every
address it resolves to must be globally routable, and the connection goes to one of the
addresses checked (``transport``), so a name that resolves elsewhere a moment later (DNS
rebinding) changes nothing. ``WEBHOOK_ALLOW_PRIVATE_ADDRESSES`` (development and tests only)
lets http and non-public addresses through.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from nordkestrel.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2000
# Ranges Python's ``is_global`` lets through (or files under a vaguer heading) that no
# webhook should reach, each with what it is.
_FORBIDDEN = tuple(
    (ipaddress.ip_network(network), name)
    for network, name in (
        ("100.64.0.0/10", "a carrier-grade NAT address"),
        ("192.0.0.0/24", "an IETF protocol assignment"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("64:ff9b::/96", "a NAT64 address (it carries an IPv4 address)"),
        ("64:ff9b:1::/48", "a NAT64 address (it carries an IPv4 address)"),
        ("2002::/16", "a 6to4 address (it carries an IPv4 address)"),
        ("2001::/32", "a Teredo address"),
    )
)
_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


class RefusedAddress(Exception):
    """The target may not be reached; the message says why, for the delivery log."""


class Unresolved(RefusedAddress):
    """The host name did not resolve (yet)."""


def forbidden_reason(address: Address) -> str | None:
    """Why ``address`` is not a webhook target, or None when it is globally routable."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return "an IPv4-mapped IPv6 address"
    if address in _METADATA:
        return "a cloud metadata address"
    for network, name in _FORBIDDEN:
        if address in network:
            return name
    # The most specific first: Python counts 0.0.0.0, 169.254/16, fe80::/10 and 240/4 among
    # its "private" networks too.
    checks: list[tuple[bool, str]] = [
        (address.is_unspecified, "the unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a globally routable address"),
    ]
    for failed, reason in checks:
        if failed:
            return reason
    return None


def _system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


# How host names become addresses; tests put a table of their own here (nothing resolves
# through the internet at test time).
resolver: Callable[[str, int], list[str]] = _system_resolve


@dataclass(frozen=True)
class Target:
    """A parsed endpoint URL: what the request line, the Host header and TLS need."""

    scheme: str
    host: str  # the name as given (IDNA-encoded), for TLS and the Host header
    port: int
    path: str  # path and query, as sent in the request line

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse(url: str) -> Target:
    """The URL's parts, or InvalidInput saying what is wrong (``attr`` ``url``)."""

    def refuse(message: str) -> InvalidInput:
        return InvalidInput(message, code="invalid_webhook_url", attr="url")

    if len(url) > MAX_URL_LENGTH or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise refuse(f"A URL of at most {MAX_URL_LENGTH} characters, without spaces.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refuse("Not a valid URL.") from None
    allowed = ("https", "http") if settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES else ("https",)
    if parts.scheme not in allowed:
        raise refuse("Webhook URLs use https.")
    if parts.username is not None or parts.password is not None:
        raise refuse("Put no credentials in the URL: verify the signature instead.")
    if parts.fragment:
        raise refuse("A webhook URL has no #fragment.")
    if port == 0:
        raise refuse("Port 0 is not a port a request can go to.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise refuse("The URL names no host.")
    try:
        host = host.encode("idna").decode("ascii") if not _is_ip(host) else host
    except UnicodeError:
        raise refuse("The host name is not valid.") from None
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, host, default if port is None else port, path)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_addresses(host: str, addresses: list[str]) -> list[Address]:
    """``addresses`` parsed, each allowed (or RefusedAddress naming the first that is not)."""
    if not addresses:
        raise RefusedAddress(f"{host} resolves to no address.")
    checked: list[Address] = []
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        reason = forbidden_reason(address)
        if reason is not None and not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
            raise RefusedAddress(f"{host} resolves to {address}, {reason}.")
        checked.append(address)
    return checked


def resolve(target: Target) -> list[Address]:
    """Every address of the target's host, all allowed; RefusedAddress otherwise."""
    if _is_ip(target.host):
        return check_addresses(target.host, [target.host])
    try:
        found = resolver(target.host, target.port)
    except (OSError, UnicodeError) as error:
        raise Unresolved(f"{target.host} could not be resolved ({error}).") from None
    # Each once, in the resolver's order.
    return check_addresses(target.host, list(dict.fromkeys(found)))


def validate(url: str) -> str:
    """The URL, if an endpoint may be saved with it: its form, and the addresses its host
    resolves to now when it resolves (a name not yet in DNS may be saved; every attempt
    checks again)."""
    target = parse(url)
    try:
        resolve(target)
    except Unresolved:
        pass
    except RefusedAddress as refused:
        raise InvalidInput(str(refused), code="webhook_url_not_public", attr="url") from None
    return url
