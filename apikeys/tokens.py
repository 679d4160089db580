"""The key format: ``nk_<env>_<random>_<checksum>``, recognisable offline.

- ``<env>`` is ``live`` in production and ``test`` everywhere else, so a development key
  pasted into production (or the reverse) is refused without a lookup.
- ``<random>`` is 32 base62 characters from the operating system's CSPRNG: 190 bits.
- ``<checksum>`` is the CRC32 of ``nk_<env>_<random>`` in 6 base62 characters, so a secret
  scanner, and our own 401 path, tells a real key from a mistyped or made-up one without a
  database lookup (as GitHub's token format does).

Keys are stored as their SHA-256 digest: they are random, so a slow password hash would only
cost milliseconds on every call and protect nothing more.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import zlib

from django.conf import settings

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
PREFIX = "nk_"
ENVIRONMENTS = ("live", "test")
# For secret scanners (README, "Secret scanning"): the whole key, nothing around it.
PATTERN = re.compile(r"nk_(?:live|test)_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}")


def environment() -> str:
    return "live" if settings.PRODUCTION else "test"


def base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits)).rjust(width, "0")


def checksum(body: str) -> str:
    return base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def generate(env: str | None = None) -> str:
    """A new key for ``env`` (this deployment's by default)."""
    body = f"{PREFIX}{env or environment()}_" + "".join(
        secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH)
    )
    return f"{body}_{checksum(body)}"


def well_formed(key: str) -> bool:
    """Whether ``key`` is one of ours for this deployment: the pattern, this environment and
    a checksum that matches. No lookup; constant work for any input of a key's length."""
    if len(key) != len(PREFIX) + 4 + 1 + RANDOM_LENGTH + 1 + CHECKSUM_LENGTH:
        return False
    if PATTERN.fullmatch(key) is None:
        return False
    body, _, check = key.rpartition("_")
    if not body.startswith(f"{PREFIX}{environment()}_"):
        return False
    return secrets.compare_digest(checksum(body), check)


def digest(key: str) -> str:
    """What is stored and looked up: the SHA-256 of the key, hex."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def last4(key: str) -> str:
    return key[-4:]
