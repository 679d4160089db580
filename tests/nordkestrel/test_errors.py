"""Every API error has one body shape: {"type", "code", "detail", "attr"}, and a 400 lists
every problem in ``errors``."""

import pytest

pytestmark = [
    pytest.mark.urls("tests.nordkestrel.urls"),
    pytest.mark.usefixtures("frozen_ratelimit_clock"),
]

SHAPE = {"type", "code", "detail", "attr"}


def assert_error(response, status, type_, code):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == (SHAPE | {"errors"} if status == 400 else SHAPE)
    assert body["type"] == type_
    assert body["code"] == code
    return body


def test_400_names_the_invalid_field(http):
    response = http.post(
        "/api/v1/test/validate", {"name": "soup", "price": -1}, content_type="application/json"
    )
    body = assert_error(response, 400, "validation_error", "min_value")
    assert body["attr"] == "price"
    assert "greater than or equal to 0" in body["detail"]


def test_400_lists_every_invalid_field(http):
    response = http.post(
        "/api/v1/test/validate", {"name": "x" * 21, "price": -1}, content_type="application/json"
    )
    body = assert_error(response, 400, "validation_error", "max_length")
    assert body["attr"] == "name"
    assert [(error["code"], error["attr"]) for error in body["errors"]] == [
        ("max_length", "name"),
        ("min_value", "price"),
    ]
    assert body["errors"][0] == {key: body[key] for key in ("code", "detail", "attr")}


def test_400_lists_nested_and_whole_body_problems_with_their_paths(http):
    basket = {"note": "too long", "items": [{"name": "soup", "price": 1}, {"name": "tea"}]}
    response = http.post("/api/v1/test/validate-basket", basket, content_type="application/json")
    body = assert_error(response, 400, "validation_error", "max_length")
    assert [(error["code"], error["attr"]) for error in body["errors"]] == [
        ("max_length", "note"),
        ("required", "items.1.price"),
    ]
    response = http.post(
        "/api/v1/test/validate-basket",
        {"note": "never", "items": []},
        content_type="application/json",
    )
    body = assert_error(response, 400, "validation_error", "invalid")
    assert body["errors"] == [{"code": "invalid", "detail": "Not on a Sunday.", "attr": None}]


def test_400_for_malformed_json(http):
    response = http.post("/api/v1/test/validate", "{not json", content_type="application/json")
    body = assert_error(response, 400, "invalid_request", "parse_error")
    assert body["attr"] is None
    assert body["errors"] == [{"code": "parse_error", "detail": body["detail"], "attr": None}]


def test_401_asks_for_credentials(http):
    response = http.get("/api/v1/test/needs-auth")
    assert_error(response, 401, "authentication_error", "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_403(http):
    assert_error(http.get("/api/v1/test/forbidden"), 403, "permission_denied", "permission_denied")


def test_404_for_an_unknown_api_path(http):
    body = assert_error(http.get("/api/v1/no-such-thing"), 404, "not_found", "not_found")
    assert body["attr"] is None


def test_404_page_outside_the_api_is_html(http):
    response = http.get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_405(http):
    response = http.delete("/api/v1/")
    assert_error(response, 405, "invalid_request", "method_not_allowed")


@pytest.mark.parametrize("path", ["/api/v1/test/broken", "/api/v1/test/broken-plain"])
def test_500_has_the_shape_and_no_internals(http, path):
    response = http.get(path)
    body = assert_error(response, 500, "server_error", "server_error")
    assert "secret internal detail" not in response.content.decode()
    assert "Traceback" not in body["detail"]


def test_429_with_retry_after_on_the_api(http):
    for _ in range(2):
        assert http.post("/api/v1/test/limited").status_code == 200
    response = http.post("/api/v1/test/limited")
    assert_error(response, 429, "rate_limited", "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60


def test_429_on_a_page_is_html_with_retry_after(http):
    for _ in range(2):
        assert http.post("/test/limited").status_code == 200
    response = http.post("/test/limited")
    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/html")
    assert 1 <= int(response["Retry-After"]) <= 60


def test_rate_limit_counts_per_client_ip(http):
    for _ in range(3):
        http.post("/api/v1/test/limited", REMOTE_ADDR="192.0.2.1")
    assert http.post("/api/v1/test/limited", REMOTE_ADDR="192.0.2.2").status_code == 200
