"""Walls 1 and 2 seen from outside: BOLA, function-level and mass-assignment matrices."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from staff.models import StaffMember
from staff.roles import Role
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import api_client
from tests.security.matrix import PUBLIC, ROUTES, STOREFRONT
from tests.security.objects import make_object, secret_of, snapshot

ROLES = [role.value for role in Role]


def api_route_names(urlconf=None):
    names = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and (prefix + str(pattern.pattern)).startswith(
                "api/"
            ):
                assert pattern.name, f"API route {prefix}{pattern.pattern} has no name"
                names.add(pattern.name)

    walk(get_resolver(urlconf).url_patterns)
    return names


def test_every_api_route_is_in_the_matrix():
    names = api_route_names()
    assert names, "the resolver lists API routes"
    assert names - PUBLIC - set(ROUTES) == set(), "add new routes to tests/security/matrix.py"
    assert set(ROUTES) | PUBLIC <= names, "the matrix names routes that no longer exist"


def test_every_storefront_api_route_is_listed():
    """Storefront hosts answer their own URLs only; their API routes are public by design and
    each has its cross-restaurant tests (tests/storefront)."""
    names = api_route_names("storefront.urls")
    assert names == STOREFRONT, "add new storefront routes to tests/security/matrix.py"
    assert not names & api_route_names(), "storefront routes never answer on the app host"


def test_the_matrix_covers_every_method_a_view_answers():
    for name, route in ROUTES.items():
        view = get_resolver().reverse_dict.getlist(name)
        assert view
        callback = next(p.callback for p in _patterns() if p.name == name)
        declared = set(callback.view_class.scopes)
        assert declared == set(route.roles), f"{name}: matrix {set(route.roles)} vs {declared}"


def _patterns():
    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns)
            else:
                yield pattern

    return list(walk(get_resolver().url_patterns))


def url_for(name, pk=None, parent=None):
    route = ROUTES.get(name)
    kwargs = dict(route.url_kwargs) if route else {}
    if pk is not None:
        kwargs[route.pk_kwarg if route else "pk"] = pk
    if parent is not None:
        assert route is not None and route.parent_kwarg, f"{name} names no parent"
        kwargs[route.parent_kwarg] = parent
    return reverse(name, kwargs=kwargs or None)


def url_of(name, target=None):
    """The URL of our own ``target`` (or of the route alone when it addresses no object): a
    delivery under its own endpoint."""
    if target is None:
        return url_for(name)
    parent = target.endpoint_id if ROUTES[name].parent_kwarg else None
    return url_for(name, target.pk, parent)


def own_parent(name, restaurant):
    """The id of an endpoint of ``restaurant``'s for a route that addresses its object under
    an endpoint (another restaurant's delivery is asked for under our own endpoint), else
    None."""
    if ROUTES[name].parent_kwarg is None:
        return None
    return make_object("webhook_endpoint", restaurant).pk


def body_text(response):
    """The body, also of a streamed response (a CSV export)."""
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def send(client, method, url, body=None, headers=None):
    if method == "get":
        return client.get(url)
    if any(isinstance(value, bytes) for value in (body or {}).values()):
        # An upload: bytes go as files in a multipart body.
        parts = {
            k: SimpleUploadedFile(k, v) if isinstance(v, bytes) else v for k, v in body.items()
        }
        return getattr(client, method)(url, data=parts)
    return getattr(client, method)(
        url, data=json.dumps(body or {}), content_type="application/json", headers=headers
    )


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    """Files the upload routes store land in a temporary folder, not the development data."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path},
        },
    }


def foreign_object(kind, roster):
    if kind == "staff":
        return roster[("theirs", "kitchen")]
    return make_object(kind, roster[("theirs", "owner")].restaurant)


BOLA_CASES = [
    (name, method, role)
    for name, route in ROUTES.items()
    if route.object_kind
    for method in route.roles
    for role in [*ROLES, None]
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method", "role"), BOLA_CASES)
def test_another_restaurants_object_is_404(roster, name, method, role):
    """Every role (and anonymous) gets the same answer for a foreign id as a missing one."""
    route = ROUTES[name]
    target = foreign_object(route.object_kind, roster)
    before = snapshot(target)
    client = api_client(roster[("ours", role)] if role else None)
    body = route.bodies.get(method)
    parent = own_parent(name, roster[("ours", "owner")].restaurant)
    client.get(reverse("api-me"))  # warm the organization lookup for both requests alike
    with CaptureQueriesContext(connection) as foreign_queries:
        foreign = send(
            client, method, url_for(name, target.pk, parent), body, route.headers.get(method)
        )
    with CaptureQueriesContext(connection) as missing_queries:
        missing = send(
            client, method, url_for(name, route.missing_pk, parent), body, route.headers.get(method)
        )
    # The same work either way: no timing difference tells a foreign id from a missing one.
    assert len(foreign_queries) == len(missing_queries)
    # Anonymous: 401. A role without the scope: 403 before any lookup. Otherwise 404. In
    # every case the foreign id answers exactly as an id that does not exist.
    expected = 401 if role is None else 404 if role in route.roles[method] else 403
    assert foreign.status_code == expected, foreign.content
    assert missing.status_code == expected
    assert foreign.json() == missing.json(), "a foreign object is indistinguishable"
    assert secret_of(target) not in foreign.content.decode()
    assert snapshot(target) == before, "the foreign object is unchanged"


@pytest.mark.django_db
@pytest.mark.parametrize("name", [n for n, r in ROUTES.items() if "get" in r.roles])
def test_reads_never_show_another_restaurants_rows(roster, name):
    route = ROUTES[name]
    theirs = roster[("theirs", "owner")].restaurant
    for kind in (
        "menu",
        "category",
        "item",
        "group",
        "modifier",
        "version",
        "webhook_delivery",
        "event",
    ):
        make_object(kind, theirs)  # something to leak, of every kind
    own = (
        make_object(route.object_kind, roster[("ours", "owner")].restaurant)
        if route.object_kind
        else None
    )
    client = api_client(roster[("ours", "owner")])
    response = client.get(url_of(name, own))
    assert response.status_code == 200
    text = body_text(response)
    foreign = [m for (slug, _), m in roster.items() if slug == "theirs"]
    assert not any(m.email in text for m in foreign)
    assert "theirs" not in text


ROLE_CASES = [
    (name, method, role)
    for name, route in ROUTES.items()
    for method in route.roles
    for role in ROLES
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method", "role"), ROLE_CASES)
def test_each_role_gets_exactly_its_scopes(roster, name, method, role):
    """SPEC.md's role table, route by route: 403 outside the role's scopes."""
    route = ROUTES[name]
    actor = roster[("ours", role)]
    # Act on a member the actor may manage, so only the role decides the answer.
    target = make_object(route.object_kind, actor.restaurant) if route.object_kind else None
    response = send(
        api_client(actor), method, url_of(name, target), route.bodies.get(method),
        route.headers.get(method),
    )  # fmt: skip
    if role in route.roles[method]:
        assert response.status_code in {200, 201, 202, 204, *route.refusals}, response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "permission_denied"


@pytest.mark.django_db
def test_cookie_alone_does_not_authenticate_the_api(roster):
    from tests.factories import token_for

    client = api_client(None)
    client.cookies["__session"] = token_for(roster[("ours", "owner")])
    response = client.get(reverse("api-me"))
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
class TestMassAssignment:
    @pytest.mark.parametrize(
        "body",
        [
            {"status": "suspended"},
            {"slug": "stolen"},
            {"clerk_organization_id": "org_theirs"},
            {"id": 1},
            {"restaurant": 2},
        ],
    )
    def test_restaurant_read_only_fields_are_rejected(self, roster, restaurants, body):
        ours = restaurants[0]
        response = send(
            api_client(roster[("ours", "owner")]), "patch", url_for("api-restaurant"), body
        )
        assert response.status_code == 400
        assert response.json()["attr"] == next(iter(body))
        fresh = Restaurant.objects.get(pk=ours.pk)
        assert (fresh.status, fresh.slug, fresh.clerk_organization_id) == (
            ours.status,
            ours.slug,
            ours.clerk_organization_id,
        )

    @pytest.mark.parametrize("field", ["restaurant", "restaurant_id", "active", "clerk_user_id"])
    def test_staff_fields_outside_the_allow_list_are_rejected(self, roster, restaurants, field):
        ours, theirs = restaurants
        target = roster[("ours", "kitchen")]
        client = api_client(roster[("ours", "owner")])
        value = theirs.pk if field.startswith("restaurant") else "user_attacker"
        response = send(client, "patch", url_for("api-staff-detail", target.pk), {field: value})
        assert response.status_code == 400
        assert response.json()["attr"] == field
        created = send(
            client, "post", url_for("api-staff-list"),
            {"email": "mass@example.com", "role": "kitchen", field: value},
        )  # fmt: skip
        assert created.status_code == 400
        for restaurant in restaurants:
            with tenant_context(restaurant):
                assert not StaffMember.objects.filter(email="mass@example.com").exists()
        with tenant_context(ours):
            assert StaffMember.objects.get(pk=target.pk).restaurant_id == ours.pk

    @pytest.mark.parametrize("role", ["manager", "cashier", "kitchen"])
    def test_a_member_cannot_raise_their_own_role(self, roster, restaurants, role):
        member = roster[("ours", role)]
        response = send(
            api_client(member), "patch", url_for("api-staff-detail", member.pk), {"role": "owner"}
        )
        assert response.status_code in (403, 404)
        with tenant_context(restaurants[0]):
            assert StaffMember.objects.get(pk=member.pk).role == role

    def test_restaurant_in_the_query_string_is_ignored(self, roster, restaurants):
        _, theirs = restaurants
        client = api_client(roster[("ours", "owner")])
        response = client.get(url_for("api-staff-list"), {"restaurant": theirs.pk})
        assert response.status_code == 200
        ids = {row["id"] for row in response.json()["results"]}
        assert ids == {m.pk for (slug, _), m in roster.items() if slug == "ours"}


KEY_CASES = [
    (name, method) for name, route in ROUTES.items() if route.object_kind for method in route.roles
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method"), KEY_CASES)
def test_another_restaurants_object_is_404_for_an_api_key(roster, name, method):
    """A key of restaurant A with every grant sees nothing of B: a foreign id answers as a
    missing one, and a route outside its grants is 403 before any lookup."""
    from apikeys import grants
    from apikeys.credentials import ApiKeyActor
    from tests.factories import key_client, make_api_key

    owner = roster[("ours", "owner")]
    every = {name: resource.levels[-1].value for name, resource in grants.RESOURCES.items()}
    client = key_client(make_api_key(owner, grants=every))
    route = ROUTES[name]
    target = foreign_object(route.object_kind, roster)
    before = snapshot(target)
    body, headers = route.bodies.get(method), route.headers.get(method)
    parent = own_parent(name, owner.restaurant)
    client.get(reverse("api-me"))  # warm the key for both requests alike
    with CaptureQueriesContext(connection) as foreign_queries:
        foreign = send(client, method, url_for(name, target.pk, parent), body, headers)
    with CaptureQueriesContext(connection) as missing_queries:
        missing = send(client, method, url_for(name, route.missing_pk, parent), body, headers)
    assert len(foreign_queries) == len(missing_queries)
    view = next(p.callback for p in _patterns() if p.name == name).view_class
    held = ApiKeyActor(member=owner, granted=grants.scopes_of(every)).has(view.scopes[method])
    assert foreign.status_code == (404 if held else 403), foreign.content
    assert missing.status_code == foreign.status_code
    assert foreign.json() == missing.json()
    assert secret_of(target) not in foreign.content.decode()
    assert snapshot(target) == before
