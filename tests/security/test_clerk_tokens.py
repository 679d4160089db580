"""SECURITY.md section 1, items 2-9: every attack on Clerk session tokens gets 401 or 403.

Keys are real RSA keys and the JWKS comes from a real HTTP server on 127.0.0.1, counting its
requests, so "no fetch" and "one fetch" are observed, not assumed.
"""

import base64
import hashlib
import hmac
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from staff import clerk
from staff.clerk import ClerkSession, TokenRejected, jwks_keys, sign_session_token
from staff.clerk import verify_session_token as verify
from tests.factories import rsa_key_pair

ISSUER = "https://clerk.nordkestrel.test"
AZP = "https://dashboard.nordkestrel.test"


@dataclass(frozen=True)
class RsaKey:
    kid: str
    private_pem: str
    public_pem: str

    @property
    def jwk(self) -> dict[str, Any]:
        public_key = serialization.load_pem_public_key(self.public_pem.encode())
        assert isinstance(public_key, rsa.RSAPublicKey)
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public_key, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}


def _rsa_key(kid: str) -> RsaKey:
    private_pem, public_pem = rsa_key_pair()
    return RsaKey(kid=kid, private_pem=private_pem, public_pem=public_pem)


@pytest.fixture(scope="session")
def clerk_key() -> RsaKey:
    return _rsa_key("ins_clerk_key_1")


@pytest.fixture(scope="session")
def attacker_key() -> RsaKey:
    return _rsa_key("attacker_key")


@pytest.fixture(scope="session")
def rotated_key() -> RsaKey:
    return _rsa_key("ins_clerk_key_2")


@dataclass
class FakeServer:
    """A real HTTP server on 127.0.0.1 answering every request with one canned response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    owner.paths.append(self.path)
                    status, body, headers = owner.status, owner.body, dict(owner.headers)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_HEAD = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/.well-known/jwks.json"

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.paths)

    def serve(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self.status, self.body, self.headers = status, body, headers or {}

    def serve_keys(self, *keys: RsaKey) -> None:
        document = {"keys": [key.jwk for key in keys]}
        self.serve(200, json.dumps(document).encode(), {"Content-Type": "application/json"})

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def start_server() -> Iterator[Callable[[], FakeServer]]:
    servers: list[FakeServer] = []

    def start() -> FakeServer:
        server = FakeServer()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def jwks_server(start_server, clerk_key) -> FakeServer:
    server = start_server()
    server.serve_keys(clerk_key)
    return server


@pytest.fixture(autouse=True)
def _empty_jwks_cache() -> Iterator[None]:
    jwks_keys.clear()
    yield
    jwks_keys.clear()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_clock(monkeypatch) -> FakeClock:
    """The JWKS cache's idea of time, moved by hand instead of sleeping."""
    clock = FakeClock()
    monkeypatch.setattr(clerk, "jwks_keys", clerk.JwksKeySet(clock=clock))
    return clock


@pytest.fixture(autouse=True)
def clerk_settings(settings, jwks_server):
    """Keys from the local JWKS server; the timings are pinned so tests don't depend on defaults."""
    settings.CLERK_ISSUER = ISSUER
    settings.CLERK_JWT_KEY = ""
    settings.CLERK_JWKS_URL = jwks_server.url
    settings.CLERK_AUTHORIZED_PARTIES = [AZP]
    settings.CLERK_JWKS_CACHE_SECONDS = 3600
    settings.CLERK_JWKS_MIN_REFRESH_SECONDS = 60
    return settings


def mint(key: RsaKey, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "kid": key.kid,
        "issuer": ISSUER,
        "azp": AZP,
        "user_id": "user_2abc",
        "org_id": "org_2trattoria",
        "org_slug": "trattoria",
        "org_role": "admin",
    }
    return sign_session_token(key.private_pem, **{**arguments, **overrides})


def session_claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "sub": "user_2abc",
        "sid": "sess_2xyz",
        "azp": AZP,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "v": 2,
        "o": {"id": "org_2trattoria", "slg": "trattoria", "rol": "admin"},
    }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A compact JWS built by hand, for algorithms PyJWT (rightly) refuses to produce."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def rejected(token: str, **kwargs: Any) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        verify(token, **kwargs)
    return info.value


def test_a_genuine_token_is_accepted(clerk_key, jwks_server):
    session = verify(mint(clerk_key))
    assert session.user_id == "user_2abc"
    assert session.org_id == "org_2trattoria"
    assert jwks_server.request_count == 1


@pytest.mark.parametrize(
    "header",
    [
        b"[" * 10_000,
        b"[" * 5_000 + b"]" * 5_000,
        b'{"alg":' * 5_000 + b'"RS256"' + b"}" * 5_000,
        b'{"alg": "RS256", "x": ' + b"[" * 65 + b"]" * 65 + b"}",
        b'{"alg": "RS256", "kid": NaN}',
    ],
    ids=["arrays", "arrays closed", "objects", "just past the limit", "NaN"],
)
def test_a_header_nested_too_deep_is_an_invalid_token(header, clerk_key, jwks_server):
    """The header is read before any signature is checked: nesting there must be refused,
    not parsed by recursion (a RecursionError would be a 500 on every endpoint)."""
    token = f"{b64url(header)}.{b64url(json.dumps(session_claims()).encode())}.{b64url(b'x')}"
    error = rejected(token)
    assert (error.status, error.code) == (401, "invalid_token")
    assert jwks_server.request_count == 0


# --- 1.2 RS256 only -------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_alg_none_is_rejected(alg, clerk_key, jwks_server):
    token = forge({"alg": alg, "typ": "JWT", "kid": clerk_key.kid}, session_claims(), lambda _: b"")
    error = rejected(token)
    assert (error.status, error.code) == (401, "invalid_token")
    assert jwks_server.request_count == 0


@pytest.mark.parametrize("key_source", ["jwks", "pem"])
def test_hs256_signed_with_the_rsa_public_key_as_secret_is_rejected(
    key_source, clerk_key, jwks_server, settings
):
    if key_source == "pem":
        settings.CLERK_JWT_KEY = clerk_key.public_pem
    secret = clerk_key.public_pem.encode()
    token = forge(
        {"alg": "HS256", "typ": "JWT", "kid": clerk_key.kid},
        session_claims(),
        lambda signing_input: hmac.new(secret, signing_input, hashlib.sha256).digest(),
    )
    error = rejected(token)
    assert (error.status, error.code) == (401, "invalid_token")


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_tokens_are_rejected(alg, clerk_key):
    token = jwt.encode(session_claims(), "s" * 64, algorithm=alg, headers={"kid": clerk_key.kid})
    error = rejected(token)
    assert (error.status, error.code) == (401, "invalid_token")


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256", "PS512"])
def test_other_rsa_algorithms_with_the_genuine_key_are_rejected(alg, clerk_key):
    token = jwt.encode(
        session_claims(), clerk_key.private_pem, algorithm=alg, headers={"kid": clerk_key.kid}
    )
    error = rejected(token)
    assert (error.status, error.code) == (401, "invalid_token")


def test_es256_is_rejected(clerk_key):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(session_claims(), ec_key, algorithm="ES256", headers={"kid": clerk_key.kid})
    error = rejected(token)
    assert (error.status, error.code) == (401, "invalid_token")


# --- 1.3 keys only from configuration -------------------------------------------------------


@pytest.mark.parametrize("header_names", [("jku",), ("x5u",), ("jwk",), ("jku", "x5u", "jwk")])
@pytest.mark.parametrize("kid_choice", ["attacker_kid", "genuine_kid"])
def test_jku_x5u_and_jwk_headers_are_ignored(
    header_names, kid_choice, clerk_key, attacker_key, start_server, jwks_server
):
    attacker_server = start_server()
    attacker_server.serve_keys(attacker_key)
    pointers = {
        "jku": attacker_server.url,
        "x5u": f"{attacker_server.base_url}/cert.pem",
        "jwk": attacker_key.jwk,
    }
    kid = attacker_key.kid if kid_choice == "attacker_kid" else clerk_key.kid
    headers = {"kid": kid, **{name: pointers[name] for name in header_names}}
    token = jwt.encode(session_claims(), attacker_key.private_pem, "RS256", headers=headers)

    error = rejected(token)

    assert error.status == 401
    assert error.code in {"unknown_key", "invalid_token"}
    assert attacker_server.request_count == 0
    assert jwks_server.request_count == 1


def _burst(tokens: list[str]) -> list[TokenRejected]:
    """Verify all tokens at once from many threads, as concurrent requests would."""

    def attempt(token: str) -> TokenRejected:
        with pytest.raises(TokenRejected) as info:
            verify(token)
        return info.value

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        return list(pool.map(attempt, tokens))


def test_a_burst_of_unknown_kids_refetches_the_jwks_once_per_interval_then_401(
    clerk_key, jwks_server, fake_clock
):
    verify(mint(clerk_key))
    assert jwks_server.request_count == 1
    fake_clock.advance(61)

    errors = _burst([mint(clerk_key, kid=f"ins_made_up_{n}") for n in range(20)])

    assert {(error.status, error.code) for error in errors} == {(401, "unknown_key")}
    assert jwks_server.request_count == 2
    fake_clock.advance(59)
    assert rejected(mint(clerk_key, kid="ins_made_up_late")).code == "unknown_key"
    assert jwks_server.request_count == 2
    fake_clock.advance(1)
    assert rejected(mint(clerk_key, kid="ins_made_up_later")).code == "unknown_key"
    assert jwks_server.request_count == 3


def test_unknown_kids_right_after_a_fetch_do_not_refetch(clerk_key, jwks_server):
    verify(mint(clerk_key))

    errors = _burst([mint(clerk_key, kid=f"ins_made_up_{n}") for n in range(20)])

    assert {(error.status, error.code) for error in errors} == {(401, "unknown_key")}
    assert jwks_server.request_count == 1


def test_a_burst_of_unknown_kids_on_a_cold_cache_fetches_once(clerk_key, jwks_server):
    errors = _burst([mint(clerk_key, kid=f"ins_made_up_{n}") for n in range(20)])

    assert {(error.status, error.code) for error in errors} == {(401, "unknown_key")}
    assert jwks_server.request_count == 1
    verify(mint(clerk_key))
    assert jwks_server.request_count == 1


def test_an_unknown_kid_refetches_once_the_interval_allows_it(
    clerk_key, rotated_key, jwks_server, settings
):
    """Key rotation: the throttle, not a lack of trying, is what limits the bursts above."""
    settings.CLERK_JWKS_MIN_REFRESH_SECONDS = 0
    verify(mint(clerk_key))
    jwks_server.serve_keys(clerk_key, rotated_key)

    session = verify(mint(rotated_key))

    assert session.user_id == "user_2abc"
    assert jwks_server.request_count == 2


def test_fresh_cached_keys_are_reused_without_fetching(clerk_key, jwks_server, fake_clock):
    verify(mint(clerk_key))
    fake_clock.advance(3599)
    verify(mint(clerk_key))
    verify(mint(clerk_key, user_id="user_other"))
    assert jwks_server.request_count == 1


def test_a_known_key_does_not_wait_behind_another_requests_fetch(clerk_key, jwks_server):
    """While one request holds the fetch lock (a slow JWKS answer), known keys still verify."""
    from staff import clerk

    verify(mint(clerk_key))
    done = threading.Event()
    token = mint(clerk_key)

    def check() -> None:
        verify(token)
        done.set()

    with clerk.jwks_keys._lock:  # as if another request were fetching right now
        worker = threading.Thread(target=check)
        worker.start()
        assert done.wait(timeout=5), "a known key waited for the lock"
    worker.join()


def test_keys_are_refetched_once_the_cache_is_stale(clerk_key, jwks_server, fake_clock):
    verify(mint(clerk_key))
    fake_clock.advance(3600)
    verify(mint(clerk_key))
    verify(mint(clerk_key))
    assert jwks_server.request_count == 2


def test_the_pem_key_path_makes_no_http_request(clerk_key, attacker_key, jwks_server, settings):
    settings.CLERK_JWT_KEY = clerk_key.public_pem

    assert verify(mint(clerk_key, kid="any_kid_at_all")).user_id == "user_2abc"
    assert rejected(mint(attacker_key)).code == "invalid_token"
    assert jwks_server.request_count == 0


def test_a_failing_jwks_with_no_cached_keys_gives_401(clerk_key, jwks_server):
    jwks_server.serve(500, b"upstream error")
    error = rejected(mint(clerk_key))
    assert (error.status, error.code) == (401, "keys_unavailable")
    assert jwks_server.request_count == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json</html>",
        b"[]",
        b'{"keys": []}',
        b'{"keys": [{"kty": "oct", "k": "AA"}]}',
        b'{"keys": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
)
def test_a_jwks_without_usable_keys_gives_401(body, clerk_key, jwks_server):
    jwks_server.serve(200, body, {"Content-Type": "application/json"})
    error = rejected(mint(clerk_key))
    assert (error.status, error.code) == (401, "keys_unavailable")


def test_jwks_redirects_are_not_followed(clerk_key, start_server, jwks_server):
    redirect_target = start_server()
    redirect_target.serve_keys(clerk_key)
    jwks_server.serve(302, b"", {"Location": redirect_target.url})

    error = rejected(mint(clerk_key))

    assert (error.status, error.code) == (401, "keys_unavailable")
    assert jwks_server.request_count == 1
    assert redirect_target.request_count == 0


def test_an_unreachable_jwks_gives_401(clerk_key, start_server, settings):
    server = start_server()
    url = server.url
    server.stop()
    settings.CLERK_JWKS_URL = url
    assert rejected(mint(clerk_key)).code == "keys_unavailable"


def test_stale_keys_are_kept_when_the_refresh_fails(clerk_key, jwks_server, settings):
    settings.CLERK_JWKS_CACHE_SECONDS = 0
    settings.CLERK_JWKS_MIN_REFRESH_SECONDS = 0
    verify(mint(clerk_key))
    jwks_server.serve(503, b"")

    assert verify(mint(clerk_key)).user_id == "user_2abc"
    assert jwks_server.request_count == 2


# --- 1.4 required claims --------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat", "iss", "sub", "sid"])
def test_a_token_missing_a_required_claim_is_rejected(claim, clerk_key):
    error = rejected(mint(clerk_key, extra={claim: None}))
    assert (error.status, error.code) == (401, "invalid_token")


# --- 1.5 exact issuer -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "issuer",
    [
        f"{ISSUER}/",
        ISSUER.replace("https://", "http://"),
        ISSUER.upper(),
        f"{ISSUER}.evil.test",
        "https://clerk.evil.test",
        ISSUER.removesuffix(".test"),
    ],
)
def test_a_foreign_issuer_is_rejected(issuer, clerk_key):
    error = rejected(mint(clerk_key, issuer=issuer))
    assert (error.status, error.code) == (401, "invalid_issuer")


# --- 1.6 five seconds of leeway -------------------------------------------------------------


def _seconds_ago(seconds: int, lifetime: int = 60) -> int:
    """A `now=` for a token that expired `seconds` ago; ceil keeps sub-second drift harmless."""
    return math.ceil(time.time()) - lifetime - seconds


def test_a_token_expired_6_seconds_ago_is_rejected(clerk_key):
    token = mint(clerk_key, lifetime_seconds=60, now=_seconds_ago(6))
    error = rejected(token)
    assert (error.status, error.code) == (401, "token_expired")


def test_a_token_expired_4_seconds_ago_is_accepted(clerk_key):
    token = mint(clerk_key, lifetime_seconds=60, now=_seconds_ago(4))
    assert verify(token).user_id == "user_2abc"


def test_a_token_valid_only_in_10_seconds_is_rejected(clerk_key):
    now = int(time.time())
    error = rejected(mint(clerk_key, now=now, extra={"nbf": now + 10}))
    assert (error.status, error.code) == (401, "token_not_yet_valid")


# --- 1.7 authorized party -------------------------------------------------------------------


def test_a_token_without_azp_is_rejected(clerk_key):
    error = rejected(mint(clerk_key, extra={"azp": None}))
    assert (error.status, error.code) == (401, "invalid_authorized_party")


@pytest.mark.parametrize(
    "azp",
    ["https://evil.test", f"{AZP}/", f"{AZP}.evil.test", "https://dashboard.nordkestrel", ""],
)
def test_a_foreign_azp_is_rejected(azp, clerk_key):
    error = rejected(mint(clerk_key, azp=azp))
    assert (error.status, error.code) == (401, "invalid_authorized_party")


def test_every_allow_listed_azp_is_accepted(clerk_key, settings):
    settings.CLERK_AUTHORIZED_PARTIES = [AZP, "https://order.nordkestrel.test"]
    assert verify(mint(clerk_key, azp="https://order.nordkestrel.test")).user_id == "user_2abc"
    assert verify(mint(clerk_key, azp=AZP)).user_id == "user_2abc"


# --- 1.8 pending sessions -------------------------------------------------------------------


def test_a_pending_session_gets_403(clerk_key):
    error = rejected(mint(clerk_key, extra={"sts": "pending"}))
    assert (error.status, error.code) == (403, "session_pending")


def test_an_active_session_is_accepted(clerk_key):
    assert verify(mint(clerk_key, extra={"sts": "active"})).user_id == "user_2abc"


# --- 1.9 organization claims ----------------------------------------------------------------


def test_v1_and_v2_organization_claims_give_the_same_session(clerk_key):
    now = int(time.time())
    v1_token = mint(clerk_key, version=1, now=now)
    v2_token = mint(clerk_key, version=2, now=now)
    v1_claims = jwt.decode(v1_token, options={"verify_signature": False})
    v2_claims = jwt.decode(v2_token, options={"verify_signature": False})
    assert v1_claims["org_role"] == "org:admin"
    assert v2_claims["o"]["rol"] == "admin"

    v1, v2 = verify(v1_token), verify(v2_token)

    assert v1.org_role == "admin"
    assert (v1.org_id, v1.org_slug, v1.org_role) == ("org_2trattoria", "trattoria", "admin")
    v1_fields = {**vars(v1), "session_id": None}
    v2_fields = {**vars(v2), "session_id": None}
    assert v1_fields == v2_fields


@pytest.mark.parametrize("version", [1, 2])
def test_a_token_without_an_organization_gets_403(version, clerk_key):
    error = rejected(mint(clerk_key, version=version, org_id=None))
    assert (error.status, error.code) == (403, "no_organization")


@pytest.mark.parametrize("version", [1, 2])
def test_no_organization_is_allowed_only_when_not_required(version, clerk_key):
    session = verify(mint(clerk_key, version=version, org_id=None), require_organization=False)
    assert (session.org_id, session.org_slug, session.org_role) == (None, None, None)


def test_v1_organization_claims_in_a_v2_token_do_not_count(clerk_key):
    token = mint(clerk_key, version=2, org_id=None, extra={"org_id": "org_2trattoria"})
    assert rejected(token).code == "no_organization"


@pytest.mark.parametrize("version", [3, "2", True])
def test_an_unknown_token_version_is_rejected(version, clerk_key):
    error = rejected(mint(clerk_key, extra={"v": version}))
    assert (error.status, error.code) == (401, "invalid_token")


# --- fva (used by 1.11 reverification) ------------------------------------------------------


@pytest.mark.parametrize(
    ("fva", "expected", "verified_within_10"),
    [
        (None, None, False),
        ((-1, -1), (-1, -1), False),
        ((0, -1), (0, -1), False),
        ((30, 3), (30, 3), True),
        ((30, 10), (30, 10), True),
        ((30, 11), (30, 11), False),
    ],
)
def test_fva_reaches_the_session(fva, expected, verified_within_10, clerk_key):
    session = verify(mint(clerk_key, fva=fva))
    assert session.factor_age_minutes == expected
    assert session.second_factor_verified_within(10) is verified_within_10


@pytest.mark.parametrize("fva", [[1], [1, 2, 3], ["0", "0"], [True, 0], {"a": 1}, "0,0"])
def test_a_malformed_fva_is_rejected(fva, clerk_key):
    error = rejected(mint(clerk_key, extra={"fva": fva}))
    assert (error.status, error.code) == (401, "invalid_token")


# --- malformed input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c.d",
        "!!!.!!!.!!!",
        "é.é.é",
        f"{b64url(b'not json')}.{b64url(b'{}')}.",
        f"{b64url(b'[1, 2]')}.{b64url(b'{}')}.",
        f"{b64url(json.dumps({'alg': 'RS256', 'kid': 7}).encode())}.{b64url(b'{}')}.",
        f"{b64url(json.dumps({'alg': 'RS256', 'kid': 'x'}).encode())}.%%%.",
        "Bearer " + "x" * 40,
    ],
)
def test_malformed_tokens_get_401_invalid_token(token, jwks_server):
    error = rejected(token)
    assert (error.status, error.code) == (401, "invalid_token")
    assert jwks_server.request_count == 0


def test_a_payload_that_is_not_an_object_is_rejected(clerk_key):
    token = forge(
        {"alg": "RS256", "kid": clerk_key.kid},
        ["not", "an", "object"],  # type: ignore[arg-type]
        lambda _: b"sig",
    )
    assert rejected(token).code == "invalid_token"


def test_a_genuinely_signed_token_with_a_tampered_payload_is_rejected(clerk_key):
    header, _, signature = mint(clerk_key).split(".")
    claims = {**session_claims(), "sub": "user_someone_else"}
    tampered = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    assert rejected(tampered).code == "invalid_token"


def test_rejection_details_do_not_echo_the_token(clerk_key):
    marker = "kid_MARKER_d41d8cd9"
    errors = [
        rejected(mint(clerk_key, kid=marker)),
        rejected(mint(clerk_key, issuer=f"https://{marker}.test")),
        rejected(mint(clerk_key, azp=f"https://{marker}.test")),
    ]
    assert [error.code for error in errors] == [
        "unknown_key",
        "invalid_issuer",
        "invalid_authorized_party",
    ]
    for error in errors:
        assert marker not in error.detail
        assert marker not in str(error)


def test_the_session_is_frozen(clerk_key):
    session = verify(mint(clerk_key))
    assert isinstance(session, ClerkSession)
    with pytest.raises(AttributeError):
        session.org_id = "org_other"  # type: ignore[misc]


def test_pyjwt_is_at_least_2_13():
    """SECURITY.md 1.12: earlier PyJWT releases have published advisories."""
    from importlib.metadata import version

    major, minor = (int(part) for part in version("pyjwt").split(".")[:2])
    assert (major, minor) >= (2, 13)
