"""Mass assignment, route by route: every staff API write that takes a body refuses a field it
does not know (SECURITY.md 2.3), in the one error shape, before it changes anything."""

import pytest

from audit.models import AuditEvent
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import api_client
from tests.security.matrix import ROUTES
from tests.security.objects import make_object
from tests.security.test_authorization import send, url_of

# Writes that take no body of their own but refuse one that carries anything.
EMPTY_BODIES = {("api-payments-account", "post"), ("api-payments-onboarding-link", "post")}

CASES = sorted(
    {(name, method) for name, route in ROUTES.items() for method in route.bodies} | EMPTY_BODIES
)


def rows():
    total = 0
    for restaurant in Restaurant.objects.all():
        with tenant_context(restaurant):
            total += AuditEvent.objects.count()
    return total


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path},
        },
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method"), CASES)
def test_an_unknown_field_is_refused_by_name(roster, name, method):
    route = ROUTES[name]
    owner = roster[("ours", "owner")]
    target = make_object(route.object_kind, owner.restaurant) if route.object_kind else None
    body = {**route.bodies.get(method, {}), "restaurant_id": "2"}
    before = rows()
    response = send(
        api_client(owner), method, url_of(name, target), body, route.headers.get(method)
    )
    assert response.status_code == 400, response.content
    refused = {"code": "read_only", "detail": "This field cannot be set.", "attr": "restaurant_id"}
    assert response.json() == {"type": "validation_error", **refused, "errors": [refused]}
    assert rows() == before, "nothing was done"


# A multipart body (an upload) is always a set of named parts.
JSON_CASES = [
    (name, method)
    for name, method in CASES
    if not any(isinstance(value, bytes) for value in ROUTES[name].bodies.get(method, {}).values())
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method"), JSON_CASES)
def test_a_body_that_is_not_an_object_is_refused(roster, name, method):
    route = ROUTES[name]
    owner = roster[("ours", "owner")]
    target = make_object(route.object_kind, owner.restaurant) if route.object_kind else None
    client = api_client(owner)
    url = url_of(name, target)
    response = getattr(client, method)(
        url, data="[1, 2]", content_type="application/json", headers=route.headers.get(method)
    )
    assert response.status_code == 400, response.content
    assert response.json()["detail"] == "Send a JSON object."
    assert response.json()["attr"] is None
