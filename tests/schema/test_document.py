"""The OpenAPI document: generated without a warning and valid OpenAPI 3 (what
``manage.py spectacular --validate --fail-on-warn`` checks), with the storefront API in it."""

from django.core.management import call_command

from tests.support.openapi import api_document


def test_the_schema_generates_without_warnings_and_validates(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert target.read_text().startswith("openapi: 3.")


def test_the_storefront_api_is_documented_with_its_host():
    paths = api_document()["paths"]
    storefront = {path for path in paths if path.startswith("/api/v1/storefront/")}
    assert storefront == {
        "/api/v1/storefront/menu",
        "/api/v1/storefront/options",
        "/api/v1/storefront/quote",
        "/api/v1/storefront/checkout",
        "/api/v1/storefront/orders/{public_id}",
        "/api/v1/storefront/orders/{public_id}/payment",
    }
    for path in storefront:
        for operation in paths[path].values():
            assert operation["tags"] == ["storefront"]
            [server] = operation["servers"]
            assert server["url"] == "{scheme}://{restaurant}.{storefront_domain}"
            body = operation["responses"].get("200") or operation["responses"]["201"]
            assert "$ref" in body["content"]["application/json"]["schema"], path
