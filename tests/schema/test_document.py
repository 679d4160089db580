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


def _operations():
    for path, item in api_document()["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "patch", "delete"):
                yield f"{method.upper()} {path}", operation


def test_every_request_body_and_success_answer_is_a_named_component():
    components = api_document()["components"]["schemas"]
    prefix = "#/components/schemas/"
    for name, operation in _operations():
        bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
        bodies += [
            (status, response.get("content", {}))
            for status, response in operation["responses"].items()
            if status.startswith("2")
        ]
        for where, content in bodies:
            for media_type, body in content.items():
                ref = body["schema"].get("$ref", "")
                assert ref.startswith(prefix), (name, where, media_type, body["schema"])
                assert ref.removeprefix(prefix) in components, (name, where)
                if where == "request":
                    assert ref.endswith("Request"), (name, ref)


def test_every_operation_documents_its_errors_in_the_error_shape():
    document = api_document()
    components = document["components"]["schemas"]
    assert set(components["ValidationError"]["required"]) == {
        "type", "code", "detail", "attr", "errors",
    }  # fmt: skip
    assert components["ValidationError"]["properties"]["errors"]["items"] == {
        "$ref": "#/components/schemas/ErrorItem"
    }
    assert set(components["Error"]["required"]) == {"type", "code", "detail", "attr"}
    for name, operation in _operations():
        responses = operation["responses"]
        errors = {status: responses[status] for status in responses if status[0] in "45"}
        assert "503" in errors, name
        assert "Retry-After" in errors["503"]["headers"], name
        for status, response in errors.items():
            [(media_type, body)] = response["content"].items()
            assert media_type == "application/json", (name, status)
            shape = "ValidationError" if status == "400" else "Error"
            assert body["schema"] == {"$ref": f"#/components/schemas/{shape}"}, (name, status)
            assert "Codes: " in response["description"], (name, status)
        parameters = {parameter["in"] for parameter in operation.get("parameters", [])}
        if "requestBody" in operation or parameters & {"query", "header"}:
            assert "400" in errors, name
        if "path" in parameters:
            assert "404" in errors, name
        security = operation.get("security", [])
        if security and all(security):  # an empty list or {} in it: no credential needed
            assert {"401", "403", "429"} <= set(errors), name
        else:
            assert not {"401", "403"} & set(errors), name


def test_error_answers_name_their_codes():
    from tenants.closing import CLOSING_CODE

    paths = api_document()["paths"]
    refund = paths["/api/v1/orders/{id}/refunds"]["post"]["responses"]
    assert "idempotency_key_reused" in refund["409"]["description"]
    assert CLOSING_CODE in refund["409"]["description"]
    assert "token_expired" in refund["401"]["description"]
    checkout = paths["/api/v1/storefront/checkout"]["post"]["responses"]
    assert "stale_cart" in checkout["409"]["description"]
    assert "rate_limited" in checkout["429"]["description"]
    [example] = checkout["400"]["content"]["application/json"]["examples"].values()
    assert len(example["value"]["errors"]) == 2
