"""The development key pair that stands in for Clerk's.

The private key lives in the git-ignored data folder; settings give its public half to the
verifier as ``CLERK_JWT_KEY``, so development tokens (``staff.dev.mint_token``) go through
exactly the checks Clerk's do. A shared module at the bottom: settings import it, and it
imports no app. Nothing uses it when DJANGO_ENV=production (settings.DEV_AUTH is False).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_FILE = "dev-signing-key.pem"


def _private_key(data_dir: Path) -> rsa.RSAPrivateKey:
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise TypeError(f"{path} does not hold an RSA private key")
    return loaded


def development_private_key_pem(data_dir: Path) -> str:
    _private_key(data_dir)  # creates the key on first use
    return (data_dir / KEY_FILE).read_text()


def development_public_key(data_dir: Path) -> str:
    return (
        _private_key(data_dir)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def key_id(data_dir: Path) -> str:
    der = (
        _private_key(data_dir)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return "dev-" + hashlib.sha256(der).hexdigest()[:16]


def development_jwks(data_dir: Path) -> dict[str, list[dict[str, str]]]:
    numbers = _private_key(data_dir).public_key().public_numbers()
    return {
        "keys": [
            {
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": key_id(data_dir),
                "n": _b64(numbers.n),
                "e": _b64(numbers.e),
            }
        ]
    }
