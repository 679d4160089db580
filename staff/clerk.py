"""Clerk session-token verification, done by hand with PyJWT (SECURITY.md section 1).

Clerk's own SDK does not check `iss` and trusts more than we want to, so every rule from
SECURITY.md 1.2-1.9 is enforced here in one place: RS256 only, keys only from the configured
JWKS URL or PEM, required claims, exact issuer, 5 s leeway, `azp` allow-list, pending
sessions and organization claims (v1 and v2 shapes).
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import logging
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from nordkestrel import safejson

logger = logging.getLogger(__name__)

ALGORITHMS = ["RS256"]
REQUIRED_CLAIMS = ["exp", "nbf", "iat", "iss", "sub", "sid"]
LEEWAY_SECONDS = 5
DEFAULT_JWKS_CACHE_SECONDS = 3600
DEFAULT_JWKS_MIN_REFRESH_SECONDS = 60
JWKS_FETCH_TIMEOUT_SECONDS = 5
# A real JWKS is a few kilobytes; a bigger answer is not one, and is not read into memory.
MAX_JWKS_BYTES = 256 * 1024
_LOOPBACK_HOSTS = {"localhost"}


class TokenRejected(Exception):
    """A token we refuse: status 401 (bad, expired, unknown) or 403 (valid but not allowed).

    `detail` is meant for the API error body, so it never repeats anything from the token.
    """

    def __init__(self, code: str, detail: str, status: int = 401) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class ClerkSession:
    """The verified facts of a session token; organization fields are version-independent."""

    user_id: str
    session_id: str
    org_id: str | None
    org_slug: str | None
    org_role: str | None
    factor_age_minutes: tuple[int, int] | None
    issued_at: int
    expires_at: int
    # Not a default Clerk claim: the session token template adds it ("email":
    # "{{user.primary_email_address}}") so invitations can be claimed at first sign-in.
    email: str | None = None

    def second_factor_verified_within(self, minutes: int) -> bool:
        """Whether a second factor was verified at most `minutes` ago (reverification gate)."""
        if self.factor_age_minutes is None:
            return False
        second_factor_age = self.factor_age_minutes[1]
        return 0 <= second_factor_age <= minutes


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could send the key fetch anywhere; returning None turns it into an error."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


_OPENER = urllib.request.build_opener(_RefuseRedirects)


class _KeysUnavailable(Exception):
    """The JWKS could not be fetched or held no usable RS256 signing key."""


def _check_jwks_url(url: str) -> None:
    """Only https, or plain http to this machine (tests); never file:, ftp: or data:."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "https" and parsed.hostname:
        return
    if parsed.scheme == "http" and parsed.hostname:
        host = parsed.hostname
        if host in _LOOPBACK_HOSTS:
            return
        try:
            if ipaddress.ip_address(host).is_loopback:
                return
        except ValueError:
            pass
    raise ImproperlyConfigured("CLERK_JWKS_URL must be an https URL (http only to loopback).")


def _fetch_jwks(url: str) -> dict[str, jwt.PyJWK]:
    """Fetch the JWKS and keep only RSA public keys usable for RS256 signatures, by kid."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with _OPENER.open(request, timeout=JWKS_FETCH_TIMEOUT_SECONDS) as response:
            body = response.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise _KeysUnavailable("the JWKS answer is too large")
        document = safejson.loads(body, max_bytes=MAX_JWKS_BYTES)
        if not isinstance(document, dict):
            raise _KeysUnavailable("the JWKS answer is not a JSON object")
        key_set = jwt.PyJWKSet.from_dict(document)
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise _KeysUnavailable(f"fetching the JWKS failed: {type(error).__name__}") from error
    except jwt.PyJWTError as error:
        raise _KeysUnavailable("the JWKS holds no usable key") from error
    keys = {
        jwk.key_id: jwk
        for jwk in key_set
        if jwk.key_id
        and jwk.key_type == "RSA"
        and jwk.algorithm_name == "RS256"
        and jwk.public_key_use in (None, "sig")
        and isinstance(jwk.key, RSAPublicKey)
    }
    if not keys:
        raise _KeysUnavailable("the JWKS holds no RS256 signing key")
    return keys


class JwksKeySet:
    """Process-wide cache of Clerk's signing keys.

    Fresh keys are served without any network call. A fetch happens when the cache is stale or
    a `kid` is unknown, but never more than once per CLERK_JWKS_MIN_REFRESH_SECONDS: tokens
    with made-up kids must not turn into a flood of requests to Clerk. The lock is held
    during the fetch (bounded by its timeout) so concurrent requests for keys it may bring
    wait for its result instead of each starting their own; known, fresh keys are served
    without the lock. `clock` is injectable so tests can move time.
    """

    _url: str
    _keys: dict[str, jwt.PyJWK]
    _fetched_at: float | None
    _attempted_at: float | None

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._reset("")

    def _reset(self, url: str) -> None:
        self._url = url
        self._keys = {}
        self._fetched_at = None
        self._attempted_at = None

    def clear(self) -> None:
        """Forget every key and fetch time (tests, and a changed CLERK_JWKS_URL)."""
        with self._lock:
            self._reset("")

    def get(self, kid: str) -> jwt.PyJWK:
        """The key for `kid`, fetching the JWKS only when the rules above allow it.

        Fetching happens on the request path only when the cache is stale or the `kid` is
        new, at most once per interval; raises TokenRejected (unknown_key, keys_unavailable).
        """
        url: str = settings.CLERK_JWKS_URL
        cache_seconds = getattr(settings, "CLERK_JWKS_CACHE_SECONDS", DEFAULT_JWKS_CACHE_SECONDS)
        min_refresh_seconds = getattr(
            settings, "CLERK_JWKS_MIN_REFRESH_SECONDS", DEFAULT_JWKS_MIN_REFRESH_SECONDS
        )
        _check_jwks_url(url)
        # Fast path without the lock: a known kid in a fresh key set never waits behind a
        # fetch that another request started for an unknown kid.
        keys, fetched_at = self._keys, self._fetched_at
        if (
            url == self._url
            and fetched_at is not None
            and self._clock() - fetched_at < cache_seconds
            and (known := keys.get(kid)) is not None
        ):
            return known
        with self._lock:
            if url != self._url:
                self._reset(url)
            now = self._clock()
            fresh = self._fetched_at is not None and now - self._fetched_at < cache_seconds
            key = self._keys.get(kid)
            if key is not None and fresh:
                return key
            if self._attempted_at is None or now - self._attempted_at >= min_refresh_seconds:
                self._attempted_at = now
                try:
                    self._keys = _fetch_jwks(url)
                    self._fetched_at = self._clock()
                except _KeysUnavailable as error:
                    # Stale keys beat no keys: Clerk being briefly down must not log everyone out.
                    logger.warning("Clerk JWKS refresh failed: %s", error)
            if not self._keys:
                raise TokenRejected(
                    "keys_unavailable", "The signing keys could not be loaded; try again shortly."
                )
            key = self._keys.get(kid)
            if key is None:
                raise TokenRejected("unknown_key", "The token is signed with an unknown key.")
            return key


jwks_keys = JwksKeySet()


@functools.lru_cache(maxsize=4)
def _pem_public_key(pem: str) -> RSAPublicKey:
    """Parse CLERK_JWT_KEY once; anything but an RSA public key is a configuration error."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError as error:
        raise ImproperlyConfigured("CLERK_JWT_KEY is not a PEM public key.") from error
    if not isinstance(key, RSAPublicKey):
        raise ImproperlyConfigured("CLERK_JWT_KEY must be an RSA public key.")
    return key


def _invalid(detail: str) -> TokenRejected:
    return TokenRejected("invalid_token", detail)


def _signing_key(header: dict[str, Any]) -> RSAPublicKey | jwt.PyJWK:
    """The PEM key when configured (networkless), else the JWKS key named by `kid`.

    Only `kid` is read from the header: `jku`, `x5u` and `jwk` would let the token choose
    the key that verifies it.
    """
    pem: str = settings.CLERK_JWT_KEY
    if pem:
        return _pem_public_key(pem)
    if not settings.CLERK_JWKS_URL:
        raise ImproperlyConfigured("Set CLERK_JWT_KEY or CLERK_JWKS_URL.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _invalid("The token names no signing key.")
    return jwks_keys.get(kid)


def _decode(token: str, key: RSAPublicKey | jwt.PyJWK, issuer: str) -> dict[str, Any]:
    """Signature, then time and issuer claims, each failure mapped to a stable code."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=ALGORITHMS,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as error:
        raise TokenRejected("token_expired", "The token has expired.") from error
    except jwt.ImmatureSignatureError as error:
        raise TokenRejected("token_not_yet_valid", "The token is not valid yet.") from error
    except jwt.InvalidIssuerError as error:
        raise TokenRejected("invalid_issuer", "The token comes from another issuer.") from error
    except jwt.MissingRequiredClaimError as error:
        raise _invalid(f"The token lacks the required '{error.claim}' claim.") from error
    except jwt.PyJWTError as error:
        raise _invalid("The token is malformed or its signature does not verify.") from error
    return claims


def _string_claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise _invalid(f"The '{name}' claim must be a non-empty string.")
    return value


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(f"The '{name}' claim must be an integer.")
    return value


def _check_authorized_party(claims: dict[str, Any]) -> None:
    """`azp` names the origin that requested the token; only our own front ends may."""
    allowed = settings.CLERK_AUTHORIZED_PARTIES
    if isinstance(allowed, str):
        # A bare string would turn `in` into a substring test.
        raise ImproperlyConfigured("CLERK_AUTHORIZED_PARTIES must be a list of origins.")
    azp = claims.get("azp")
    if not isinstance(azp, str) or azp not in allowed:
        raise TokenRejected(
            "invalid_authorized_party", "The token was issued to an origin we do not serve."
        )


def _organization(claims: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(id, slug, role without "org:") from either token version, or three Nones."""
    version = claims.get("v", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version not in (1, 2):
        raise _invalid("The session token version is not supported.")
    if version == 2:
        org = claims.get("o")
        if org is None:
            return None, None, None
        if not isinstance(org, dict):
            raise _invalid("The 'o' claim must be an object.")
        org_id, org_slug, org_role = org.get("id"), org.get("slg"), org.get("rol")
    else:
        org_id, org_slug, org_role = (
            claims.get("org_id"),
            claims.get("org_slug"),
            claims.get("org_role"),
        )
    for value in (org_id, org_slug, org_role):
        if value is not None and not isinstance(value, str):
            raise _invalid("The organization claims must be strings.")
    if not org_id:
        return None, None, None
    if org_role is not None:
        org_role = org_role.removeprefix("org:")
    return org_id, org_slug or None, org_role or None


def _factor_age(claims: dict[str, Any]) -> tuple[int, int] | None:
    """`fva` is [first factor age, second factor age] in minutes, -1 meaning never."""
    fva = claims.get("fva")
    if fva is None:
        return None
    if (
        not isinstance(fva, list)
        or len(fva) != 2
        or any(not isinstance(age, int) or isinstance(age, bool) for age in fva)
    ):
        raise _invalid("The 'fva' claim must be a pair of integers.")
    return fva[0], fva[1]


def verify_session_token(token: str, *, require_organization: bool = True) -> ClerkSession:
    """Verify a Clerk session token; raises TokenRejected (401/403) for anything we refuse."""
    issuer: str = settings.CLERK_ISSUER
    if not issuer:
        raise ImproperlyConfigured("CLERK_ISSUER must be set to the Clerk Frontend API URL.")
    if not isinstance(token, str) or not token:
        raise _invalid("No token was given.")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise _invalid("The token is malformed.") from error
    # Checked before any key lookup so that `alg: none` or HS256 tokens never cause a fetch.
    if header.get("alg") not in ALGORITHMS:
        raise _invalid("The token's signing algorithm is not allowed.")
    claims = _decode(token, _signing_key(header), issuer)

    user_id = _string_claim(claims, "sub")
    session_id = _string_claim(claims, "sid")
    issued_at = _int_claim(claims, "iat")
    expires_at = _int_claim(claims, "exp")
    _check_authorized_party(claims)
    if claims.get("sts") == "pending":
        raise TokenRejected(
            "session_pending", "The session has pending tasks to complete first.", status=403
        )
    org_id, org_slug, org_role = _organization(claims)
    factor_age_minutes = _factor_age(claims)
    if require_organization and org_id is None:
        raise TokenRejected(
            "no_organization", "Select an organization (restaurant) first.", status=403
        )
    return ClerkSession(
        user_id=user_id,
        session_id=session_id,
        org_id=org_id,
        org_slug=org_slug,
        org_role=org_role,
        factor_age_minutes=factor_age_minutes,
        issued_at=issued_at,
        expires_at=expires_at,
        email=email if isinstance(email := claims.get("email"), str) and email else None,
    )


@functools.lru_cache(maxsize=8)
def _private_key(pem: str) -> PrivateKeyTypes:
    """Parsing (and validating) an RSA private key costs tens of milliseconds; do it once."""
    return serialization.load_pem_private_key(pem.encode(), password=None)


def sign_session_token(
    private_key_pem: str,
    *,
    kid: str,
    issuer: str,
    azp: str,
    user_id: str,
    org_id: str | None,
    org_slug: str | None = None,
    org_role: str | None = None,
    version: int = 2,
    lifetime_seconds: int = 3600,
    fva: tuple[int, int] | None = (0, 0),
    extra: dict[str, Any] | None = None,
    now: int | None = None,
) -> str:
    """Build a Clerk-shaped RS256 session token, for development tooling and tests.

    `org_role` is given without the "org:" prefix; v1 tokens get it added, as Clerk does.
    `extra` is merged last: a value of None removes that claim, so tests can drop any one.
    """
    issued_at = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": user_id,
        "sid": f"sess_{secrets.token_hex(12)}",
        "azp": azp,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + lifetime_seconds,
    }
    if fva is not None:
        claims["fva"] = list(fva)
    if version == 2:
        claims["v"] = 2
        if org_id is not None:
            org = {"id": org_id, "slg": org_slug, "rol": org_role}
            claims["o"] = {name: value for name, value in org.items() if value is not None}
    elif version == 1:
        if org_id is not None:
            claims["org_id"] = org_id
            if org_slug is not None:
                claims["org_slug"] = org_slug
            if org_role is not None:
                claims["org_role"] = f"org:{org_role}"
    else:
        raise ValueError("version must be 1 or 2")
    for name, value in (extra or {}).items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    key = _private_key(private_key_pem)
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("session tokens are signed with an RSA private key")
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
