"""Checks a test client's response against the API's own OpenAPI document, with the same
validator the fuzzer uses (schemathesis' ``response_schema_conformance``).

``assert_matches_schema(response, "GET", "/api/v1/items/{id}")`` fails when the status code is
not documented for the operation or the body does not match what the document declares.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import requests
import schemathesis
from schemathesis.specs.openapi.schemas import OpenApiSchema


@functools.cache
def api_document() -> dict[str, Any]:
    """The OpenAPI document ``/api/v1/schema/`` serves, as JSON data."""
    from drf_spectacular.renderers import OpenApiJsonRenderer
    from drf_spectacular.settings import spectacular_settings

    generator = spectacular_settings.DEFAULT_GENERATOR_CLASS()
    document = generator.get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document, renderer_context={}))


@functools.cache
def _schema() -> OpenApiSchema:
    return schemathesis.openapi.from_dict(api_document())


def assert_matches_schema(response: Any, method: str, path: str) -> None:
    operation = _schema()[path][method.upper()]
    documented = operation.definition.raw["responses"]
    status = str(response.status_code)
    assert status in documented or "default" in documented, (
        f"{method} {path} answered {status}, which its schema does not document "
        f"({sorted(documented)}): {response.content[:500]!r}"
    )
    request = requests.Request(
        method.upper(), "http://testserver" + response.request["PATH_INFO"]
    ).prepare()
    operation.validate_response(
        schemathesis.Response(
            status_code=response.status_code,
            headers={name.lower(): [value] for name, value in response.headers.items()},
            content=response.content,
            request=request,
            elapsed=0.0,
            verify=False,
        )
    )
