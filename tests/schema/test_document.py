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


def test_the_checkout_and_quote_bodies_are_named_components_with_properties():
    document = api_document()
    components = document["components"]["schemas"]
    expected = {
        "/api/v1/storefront/quote": {"lines", "fulfilment", "scheduled_for", "tip"},
        "/api/v1/storefront/checkout": {"lines", "name", "email", "address", "expected_total"},
    }
    for path, fields in expected.items():
        body = document["paths"][path]["post"]["requestBody"]
        schema = body["content"]["application/json"]["schema"]
        prefix = "#/components/schemas/"
        assert schema["$ref"].startswith(prefix), path
        component = components[schema["$ref"].removeprefix(prefix)]
        assert component["type"] == "object", path
        assert fields <= set(component["properties"]), path
        lines = component["properties"]["lines"]["items"]
        assert lines["$ref"].removeprefix(prefix) in components, path


def test_the_csv_export_path_names_every_export():
    from exports import registry

    operation = api_document()["paths"]["/api/v1/exports/{export_type}.csv"]["get"]
    [parameter] = [p for p in operation["parameters"] if p["name"] == "export_type"]
    assert sorted(parameter["schema"]["enum"]) == sorted(e.name for e in registry.export_types())


def test_links_lead_from_what_is_created_to_where_it_is_addressed():
    paths = api_document()["paths"]
    placed = paths["/api/v1/storefront/checkout"]["post"]["responses"]["201"]["links"]
    assert placed["ReadOrder"] == {
        "operationId": "storefront_order",
        "parameters": {"public_id": "$response.body#/public_id"},
    }
    created = paths["/api/v1/menus/{id}/categories"]["post"]["responses"]["201"]["links"]
    assert created["DeleteCategory"]["operationId"] == "categories_destroy"
