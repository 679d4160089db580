"""Schemathesis hooks for the fuzzing run (``SCHEMATHESIS_HOOKS=tests.schema.fuzz_hooks``).

Loaded by the ``st`` process that ``test_fuzz.py`` starts; everything it needs comes from the
environment that test sets (``NK_FUZZ_*``), so it imports no Django settings:

- every staff API request carries a credential of the fuzzing restaurant's Owner: a fresh,
  short-lived session token signed with the development key as Clerk would sign it, or, when
  ``NK_FUZZ_API_KEY`` is set, that API key (the Owner's, holding every grant);
- every storefront API request is sent with the storefront's ``Host``
  (``<slug>.<STOREFRONT_DOMAIN>``), the way a diner's browser reaches it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import schemathesis

from staff.clerk import sign_session_token

STOREFRONT_PREFIX = "/api/v1/storefront/"
# Shorter than any run: a token minted per request never outlives the request.
TOKEN_LIFETIME_SECONDS = 120


def _env(name: str) -> str:
    return os.environ[f"NK_FUZZ_{name}"]


@schemathesis.auth(refresh_interval=None).skip_for(path_regex=f"^{STOREFRONT_PREFIX}")
class OwnerCredential:
    """The API key, or a new session token for every request, so no run is long enough for
    one to expire."""

    def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str:
        api_key = os.environ.get("NK_FUZZ_API_KEY")
        if api_key:
            return api_key
        return sign_session_token(
            Path(_env("KEY_FILE")).read_text(),
            kid=_env("KEY_ID"),
            issuer=_env("ISSUER"),
            azp=_env("AZP"),
            user_id=_env("USER"),
            org_id=_env("ORG"),
            org_role="member",
            lifetime_seconds=TOKEN_LIFETIME_SECONDS,
            extra={"email": _env("EMAIL")},
        )

    def set(self, case: schemathesis.Case, data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: Any) -> None:
    if case.operation.path.startswith(STOREFRONT_PREFIX):
        case.headers["Host"] = _env("STOREFRONT_HOST")
