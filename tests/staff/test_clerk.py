"""The token-signing helper and ClerkSession behaviour; the attacks live in tests/security."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from staff.clerk import ClerkSession, jwks_keys, sign_session_token, verify_session_token
from tests.factories import rsa_key_pair

ISSUER = "https://clerk.nordkestrel.test"
AZP = "https://dashboard.nordkestrel.test"


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    return rsa_key_pair()


@pytest.fixture(autouse=True)
def _networkless_clerk(settings, key_pair):
    """The PEM path: these tests never need a JWKS server."""
    jwks_keys.clear()
    settings.CLERK_ISSUER = ISSUER
    settings.CLERK_JWT_KEY = key_pair[1]
    settings.CLERK_JWKS_URL = ""
    settings.CLERK_AUTHORIZED_PARTIES = [AZP]
    yield
    jwks_keys.clear()


def sign(private_pem: str, **overrides) -> str:
    arguments = {
        "kid": "ins_key",
        "issuer": ISSUER,
        "azp": AZP,
        "user_id": "user_2abc",
        "org_id": "org_2trattoria",
        "org_slug": "trattoria",
        "org_role": "manager",
    }
    return sign_session_token(private_pem, **{**arguments, **overrides})


def unverified_claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_a_signed_token_round_trips_into_a_session(key_pair):
    now = int(time.time())
    token = sign(key_pair[0], now=now, lifetime_seconds=120, fva=(7, 3))

    session = verify_session_token(token)

    assert session == ClerkSession(
        user_id="user_2abc",
        session_id=unverified_claims(token)["sid"],
        org_id="org_2trattoria",
        org_slug="trattoria",
        org_role="manager",
        factor_age_minutes=(7, 3),
        issued_at=now,
        expires_at=now + 120,
    )
    assert session.session_id.startswith("sess_")
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": "ins_key"}


def test_v2_tokens_carry_the_compact_organization_claim(key_pair):
    claims = unverified_claims(sign(key_pair[0], version=2))
    assert claims["v"] == 2
    assert claims["o"] == {"id": "org_2trattoria", "slg": "trattoria", "rol": "manager"}
    assert not {"org_id", "org_slug", "org_role"} & claims.keys()


def test_v1_tokens_carry_prefixed_organization_claims(key_pair):
    claims = unverified_claims(sign(key_pair[0], version=1))
    assert "v" not in claims
    assert "o" not in claims
    assert (claims["org_id"], claims["org_slug"], claims["org_role"]) == (
        "org_2trattoria",
        "trattoria",
        "org:manager",
    )


@pytest.mark.parametrize("version", [1, 2])
def test_tokens_without_an_organization_carry_no_organization_claims(version, key_pair):
    claims = unverified_claims(sign(key_pair[0], version=version, org_id=None))
    assert not {"o", "org_id", "org_slug", "org_role"} & claims.keys()


def test_the_signed_claims_are_clerk_shaped(key_pair):
    claims = unverified_claims(sign(key_pair[0], now=1_700_000_000, lifetime_seconds=60))
    assert claims["iss"] == ISSUER
    assert claims["azp"] == AZP
    assert claims["sub"] == "user_2abc"
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (
        1_700_000_000,
        1_700_000_000,
        1_700_000_060,
    )
    assert claims["fva"] == [0, 0]


def test_extra_overrides_claims_and_none_removes_them(key_pair):
    claims = unverified_claims(
        sign(key_pair[0], fva=None, extra={"sub": "user_other", "sts": "active", "sid": None})
    )
    assert claims["sub"] == "user_other"
    assert claims["sts"] == "active"
    assert "sid" not in claims
    assert "fva" not in claims


def test_every_token_gets_its_own_session_id(key_pair):
    assert (
        unverified_claims(sign(key_pair[0]))["sid"] != unverified_claims(sign(key_pair[0]))["sid"]
    )


def test_an_unknown_version_is_refused_when_signing(key_pair):
    with pytest.raises(ValueError, match="version"):
        sign(key_pair[0], version=3)


def test_only_rsa_private_keys_sign(key_pair):
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValueError, match="RSA"):
        sign(ec_pem)


def _session(fva: tuple[int, int] | None) -> ClerkSession:
    return ClerkSession(
        user_id="user_2abc",
        session_id="sess_1",
        org_id="org_2trattoria",
        org_slug="trattoria",
        org_role="admin",
        factor_age_minutes=fva,
        issued_at=0,
        expires_at=60,
    )


@pytest.mark.parametrize(
    ("fva", "minutes", "expected"),
    [
        (None, 10, False),
        ((-1, -1), 10, False),
        ((0, -1), 10, False),
        ((-1, 0), 10, True),
        ((5, 0), 10, True),
        ((5, 9), 10, True),
        ((5, 10), 10, True),
        ((5, 11), 10, False),
        ((5, 0), 0, True),
        ((5, 1), 0, False),
    ],
)
def test_second_factor_verified_within(fva, minutes, expected):
    assert _session(fva).second_factor_verified_within(minutes) is expected
