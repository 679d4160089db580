"""OPTIONS on the API: a description of the view, behind the same authentication as every
other method, the same for every id (so it tells nothing about another restaurant's rows)."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from staff.roles import Role
from tests.factories import api_client, token_for
from tests.security.matrix import ROUTES
from tests.security.objects import make_object
from tests.security.test_authorization import url_for, url_of

pytestmark = pytest.mark.django_db

ROLES = [role.value for role in Role]
DESCRIPTION = {"name", "description", "renders", "parses"}


def options(client, url):
    return client.options(url)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("api-payments-account", None),
        ("api-payouts", None),
        ("api-restaurant-deletion", None),
        ("api-order-refunds", "order"),
        ("api-opening-hours", None),
    ],
)
def test_the_owner_gets_the_views_description(roster, name, kind):
    owner = roster[("ours", "owner")]
    target = make_object(kind, owner.restaurant) if kind else None

    response = options(api_client(owner), url_of(name, target))

    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert set(body) == DESCRIPTION
    assert body["renders"] == ["application/json"]
    allowed = {method.strip() for method in response["Allow"].split(",")}
    assert {method.upper() for method in ROUTES[name].roles} <= allowed
    assert "OPTIONS" in allowed


@pytest.mark.parametrize("name", sorted(ROUTES))
@pytest.mark.parametrize("role", [*ROLES, None])
def test_options_answers_whoever_may_use_the_route_and_refuses_the_rest(roster, name, role):
    """Anonymous: 401 as for any method. A role that may use none of the route's methods:
    403. Everyone else: the description, never a 500."""
    route = ROUTES[name]
    member = roster[("ours", role)] if role else None
    restaurant = roster[("ours", "owner")].restaurant
    target = make_object(route.object_kind, restaurant) if route.object_kind else None

    response = options(api_client(member), url_of(name, target))

    allowed = set().union(*route.roles.values())
    expected = 401 if role is None else 200 if role in allowed else 403
    assert response.status_code == expected, response.content[:300]
    body = response.json()
    if expected == 200:
        assert set(body) == DESCRIPTION
    else:
        assert set(body) == {"type", "code", "detail", "attr"}
        assert body["code"] == ("not_authenticated" if role is None else "permission_denied")
    if role is None:
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("name", sorted(n for n, r in ROUTES.items() if r.object_kind))
def test_options_is_the_same_for_our_id_another_restaurants_and_a_missing_one(roster, name):
    route = ROUTES[name]
    client = api_client(roster[("ours", "owner")])
    ours = make_object(route.object_kind, roster[("ours", "owner")].restaurant)
    theirs = make_object(route.object_kind, roster[("theirs", "owner")].restaurant)
    # Under our own endpoint where the route names one: ours, theirs and a missing id alike.
    parent = getattr(ours, "endpoint_id", None) if route.parent_kwarg else None
    client.get(reverse("api-me"))  # warm the organization lookup for every request alike

    answers, queries = [], []
    for pk in (ours.pk, theirs.pk, route.missing_pk):
        with CaptureQueriesContext(connection) as captured:
            response = options(client, url_for(name, pk, parent))
        answers.append((response.status_code, response.content, response["Allow"]))
        queries.append(len(captured))

    assert answers[0][0] == 200
    assert answers[0] == answers[1] == answers[2]
    assert queries[0] == queries[1] == queries[2], "no lookup tells the ids apart"
    assert theirs.pk != ours.pk


def test_unsupported_methods_are_405_for_a_member_and_401_for_anyone_else(roster):
    owner = api_client(roster[("ours", "owner")])
    for method in ("PUT", "DELETE", "TRACE", "PROPFIND"):
        response = owner.generic(method, reverse("api-me"))
        assert response.status_code == 405, (method, response.content)
        assert response.json()["code"] == "method_not_allowed"
        anonymous = api_client(None).generic(method, reverse("api-me"))
        assert anonymous.status_code == 401
    # A HEAD on a route without GET is a 405 too.
    assert owner.head(reverse("api-menu-publish")).status_code == 405


def dashboard(member):
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token_for(member)
    return client


def test_dashboard_pages_answer_head_and_options_and_405_for_what_they_do_not_handle(roster):
    owner = dashboard(roster[("ours", "owner")])
    head = owner.head("/dashboard/orders")
    assert head.status_code == 200
    assert head.content == b""
    described = owner.options("/dashboard/orders")
    assert described.status_code == 200
    assert "GET" in described["Allow"]
    for method in ("PUT", "PATCH", "DELETE", "TRACE", "PROPFIND"):
        assert owner.generic(method, "/dashboard/orders").status_code == 405, method


def test_dashboard_options_and_head_keep_the_pages_roles(roster):
    kitchen = dashboard(roster[("ours", "kitchen")])
    assert kitchen.options("/dashboard/payouts").status_code == 403
    assert kitchen.head("/dashboard/payouts").status_code == 403
    assert kitchen.head("/dashboard/kitchen").status_code == 200
    # Signed out, every method goes to the sign-in page, OPTIONS included.
    assert api_client(None).options("/dashboard/orders").status_code == 302
