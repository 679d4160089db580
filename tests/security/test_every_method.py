"""No route answers any method with a 5xx, whatever the body and whatever the id.

Every route of both URL confs is read from the resolver: the API on the app host (with an
Owner's token, and anonymous), the storefront's pages and API on a storefront host, the
dashboard (signed in as the Owner, and not), the platform admin (as a superuser, and not),
webhooks, health checks and the development routes. Each path parameter is filled with a
real id of the restaurant's objects and with ids that do not exist (one beyond any integer
column); each URL gets every method, an unknown one included, with an empty body and with a
junk JSON body. A 5xx fails, however Django produced it: an exception out of the view
(returned as a 500 by ``raise_request_exception=False``), a 5xx a view answered itself, or
an exception raised while a streamed body is read. On API paths every error is in the one
error shape.

A new route whose path parameters this file cannot fill fails here until it is taught how
(``values_for``). Each area runs in real transactions (views that commit their own steps and
work run on commit behave as in production), with Stripe's loopback stand-in, so a 503 is
never "Stripe is not configured".
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, path
from django_tasks_db.models import DBTaskResult
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.consent import consent_token
from customers.models import Customer
from menus.models import MenuVersion
from staff.roles import Role
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import make_restaurant, make_shop, make_staff, open_all_week, token_for
from tests.security.matrix import ROUTES
from tests.security.objects import make_object
from tests.security.test_dashboard_matrix import PAGE_OBJECTS

METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "TRACE", "PROPFIND", "DELETE"]
JUNK = json.dumps(
    {"junk": [1, {"nested": None}], "id": -1, "restaurant": 2, "name": "\u0000", "amount": 1e308}
)
BODIES = {"empty body": None, "junk JSON": JUNK}
MISSING_INT = "999999999"
# The <int:...> converter takes any digits: a value no integer column can hold.
OVERFLOW_INT = str(2**70)
SHAPE = {"type", "code", "detail", "attr"}
STOREFRONT_HOST = "ours.localhost"

# Routes written as regular expressions: the URLs that stand for each.
REGEX_URLS = {
    "admin/^(?P<app_label>auth|django_tasks_database|tenants)/$": [
        "/admin/tenants/",
        "/admin/auth/",
    ],
    "admin/(?P<url>.*)$": ["/admin/no-such-page/", "/admin/tenants/restaurant/x/y/z/"],
    "^media/(?P<path>.*)$": ["/media/no-such-file.webp", "/media/", "/media/../settings.py"],
}


@dataclass(frozen=True)
class Route:
    urlconf: str | None  # None: the app host's; "storefront.urls": a storefront host's
    template: str  # e.g. "api/v1/orders/<int:pk>/refunds"
    name: str | None
    regex: bool

    @property
    def area(self) -> str:
        if self.urlconf == "storefront.urls":
            return "storefront"
        first = self.template.split("/", 1)[0]
        return {"api": "api", "dashboard": "dashboard", "admin": "admin"}.get(first, "other")

    def __str__(self) -> str:
        host = "storefront" if self.urlconf else "app"
        return f"{host}:/{self.template}"


def _walk(patterns: list[Any], prefix: str = "", regex: bool = False) -> Iterator[Route]:
    for pattern in patterns:
        is_regex = regex or type(pattern.pattern).__name__ == "RegexPattern"
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), is_regex)
        elif isinstance(pattern, URLPattern):
            yield Route(None, prefix + str(pattern.pattern), pattern.name, is_regex)


def all_routes() -> list[Route]:
    app = list(_walk(get_resolver().url_patterns))
    storefront = [
        Route("storefront.urls", r.template, r.name, r.regex)
        for r in _walk(get_resolver("storefront.urls").url_patterns)
    ]
    # The same template twice (the rate-limited admin login before admin's own) is one route.
    unique = {(r.urlconf, r.template): r for r in app + storefront}
    return list(unique.values())


ROUTES_UNDER_TEST = all_routes()
PARAMETER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


# --- the data every route's parameters are filled from ---------------------------------------


class World:
    """One restaurant with a published menu, its Owner and a platform superuser; objects for
    path parameters are made fresh for each route (a DELETE on one route leaves the next
    route a real object to address)."""

    def __init__(self) -> None:
        self.ours = make_restaurant("ours", name="Ours")
        theirs = make_restaurant("theirs")
        self.owner = make_staff(self.ours, Role.OWNER)
        make_staff(theirs, Role.OWNER)
        open_all_week(self.ours)
        self.shop = make_shop(self.ours)
        # The object a route's last parameter names, made while its first one was filled.
        self.child: Any = None
        # No password: force_login needs none, and hashing one costs a second.
        self.superuser = get_user_model().objects.create(
            username="root", email="root@example.com", is_staff=True, is_superuser=True
        )
        task = DBTaskResult.objects.create(
            task_path="tests.support.tasks.nothing", args_kwargs={"args": [], "kwargs": {}}
        )
        self.admin_ids = {
            "restaurant": str(self.ours.pk),
            "user": str(self.superuser.pk),
            "group": str(Group.objects.create(name="g").pk),
            "dbtaskresult": str(task.pk),
            "content_type": str(ContentType.objects.get_for_model(Restaurant).pk),
        }

    def object_of(self, kind: str) -> Any:
        if kind == "version":
            with tenant_context(self.ours):
                return MenuVersion.objects.order_by("-number").first()
        return make_object(kind, self.ours)

    def consent_token(self, order: Any) -> str:
        with tenant_context(self.ours):
            return consent_token(Customer.objects.get(pk=order.customer_id))


def values_for(route: Route, converter: str | None, name: str, world: World) -> list[str]:
    """A real value of the restaurant's (or the platform's) for one path parameter, then
    values that name nothing."""
    if route.area == "api" and converter == "uuid":
        kind = ROUTES[route.name or ""].object_kind
        assert kind, f"{route}: the matrix names no object kind for its {name}"
        return [str(world.object_of(kind).pk), str(uuid.uuid4())]
    if route.area == "api" and name in ("pk", "endpoint_pk"):
        entry = ROUTES[route.name or ""]
        kind = entry.object_kind
        assert kind, f"{route}: the matrix names no object kind for its {name}"
        if name == entry.parent_kwarg:
            # A delivery is addressed under its endpoint: the delivery the next parameter
            # names is made now, and its endpoint fills this one.
            world.child = world.object_of(kind)
            return [str(world.child.endpoint_id), MISSING_INT, OVERFLOW_INT]
        if entry.parent_kwarg:
            return [str(world.child.pk), MISSING_INT, OVERFLOW_INT]
        return [str(world.object_of(kind).pk), MISSING_INT, OVERFLOW_INT]
    if route.area == "dashboard" and name == "pk":
        kind = PAGE_OBJECTS.get("/" + route.template, "item")
        return [str(world.object_of(kind).pk), MISSING_INT, OVERFLOW_INT]
    if route.area == "api" and name == "export_type":
        return ["customers", "no-such-export"]
    if route.area == "storefront" and name == "item_id":
        return [str(world.shop["burger"]), MISSING_INT, OVERFLOW_INT]
    if route.area == "storefront" and name == "public_id":
        return [str(world.object_of("order").public_id), str(uuid.uuid4())]
    if route.area == "storefront" and name == "token":
        return [world.consent_token(world.object_of("order")), "not-a-token", "x" * 2000]
    if route.template.startswith("admin/r/"):  # "view on site": a content type and an object
        ids = {"content_type_id": world.admin_ids["content_type"], "object_id": str(world.ours.pk)}
        return [ids[name], MISSING_INT]
    if route.area == "admin" and name == "object_id":
        model = route.template.split("/")[2]
        return [world.admin_ids[model], MISSING_INT, "not-an-id", str(uuid.uuid4())]
    if route.area == "admin" and name == "id":  # a user's password page
        return [world.admin_ids["user"], MISSING_INT, "not-an-id"]
    raise AssertionError(f"{route}: teach values_for() to fill <{converter}:{name}>")


def urls_for(route: Route, world: World) -> list[str]:
    if route.regex:
        assert route.template in REGEX_URLS, f"{route}: add its URLs to REGEX_URLS"
        return REGEX_URLS[route.template]
    urls = ["/" + route.template]
    for match in PARAMETER.finditer(route.template):
        options = values_for(route, match["converter"], match["name"], world)
        urls = [url.replace(match.group(0), value, 1) for url in urls for value in options]
    return urls


def callers(route: Route, world: World) -> dict[str, Client]:
    """Who knocks: the callers this route serves, and someone it does not know."""
    if route.area == "storefront":
        return {"a diner": Client(raise_request_exception=False, HTTP_HOST=STOREFRONT_HOST)}
    anonymous = Client(raise_request_exception=False)
    if route.area == "api":
        token = token_for(world.owner)
        owner = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {token}")
        return {"the Owner": owner, "anonymous": anonymous}
    if route.area == "dashboard":
        owner = Client(raise_request_exception=False)
        owner.cookies["__session"] = token_for(world.owner)
        return {"the Owner": owner, "anonymous": anonymous}
    if route.area == "admin":
        superuser = Client(raise_request_exception=False)
        superuser.force_login(world.superuser)
        return {"a superuser": superuser, "anonymous": anonymous}
    return {"anonymous": anonymous}


def problem(route: Route, method: str, response: Any) -> str | None:
    """What is wrong with one answer, or None."""
    try:
        body = b"".join(response.streaming_content) if response.streaming else response.content
    except Exception as error:  # raised while the streamed body was produced
        return f"the streamed body raised {error!r}"
    if response.status_code >= 500:
        return f"{response.status_code}: {body[:300]!r}"
    is_api = route.template.startswith("api/")
    if is_api and response.status_code >= 400 and method != "HEAD":
        try:
            shape = set(json.loads(body))
        except (ValueError, TypeError):
            return f"{response.status_code} is not JSON: {body[:200]!r}"
        # A 400 lists every problem in ``errors`` too.
        if shape != (SHAPE | {"errors"} if response.status_code == 400 else SHAPE):
            return f"{response.status_code} is not in the error shape: {body[:200]!r}"
    return None


def knock(route: Route, world: World) -> Iterator[str]:
    """Every method, both bodies, every URL, every caller of one route: what went wrong."""
    urls = urls_for(route, world)
    for who, client in callers(route, world).items():
        # The refused are refused before any lookup: one URL of each route is enough.
        for url in urls if who != "anonymous" else urls[:1]:
            for method in METHODS:
                for body_name, body in BODIES.items():
                    extra: dict[str, Any] = {}
                    if body is not None:
                        extra = {"data": body, "content_type": "application/json"}
                    where = f"{method} {url} ({who}, {body_name})"
                    try:
                        response = client.generic(method, url, **extra)
                    except Exception as error:  # out of the test client itself
                        yield f"{where}: raised {error!r}"
                        continue
                    if (found := problem(route, method, response)) is not None:
                        yield f"{where}: {found}"


AREAS = ["api", "storefront", "dashboard", "admin", "other"]


def test_every_route_is_reached():
    """The walk sees both URL confs and each area, so a resolver change cannot empty it."""
    assert {route.area for route in ROUTES_UNDER_TEST} == set(AREAS)
    assert len(ROUTES_UNDER_TEST) > 120
    assert {"api-payouts", "api-storefront-checkout", "stripe-webhook-connect", "dev-sign-in"} <= {
        route.name for route in ROUTES_UNDER_TEST
    }


@pytest.mark.parametrize("area", AREAS)
def test_no_route_answers_a_5xx(area, transactional_db, stripe_stand_in, settings, tmp_path):
    # Files the upload routes store land in a temporary folder.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path},
        },
    }
    world = World()
    failures: list[str] = []
    for route in (r for r in ROUTES_UNDER_TEST if r.area == area):
        # Each route starts with fresh rate-limit counters and lookups.
        cache.clear()
        failures.extend(f"{route}: {failure}" for failure in knock(route, world))
    assert not failures, "\n".join(failures)


# --- the walk itself catches each way a 500 comes out --------------------------------------


class _RaisingApiView(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise RuntimeError("unexpected")


def _raising_page(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("unexpected")


def _stream_that_breaks(request: HttpRequest) -> StreamingHttpResponse:
    def rows() -> Iterator[bytes]:
        yield b"first row\n"
        raise RuntimeError("broke mid-stream")

    return StreamingHttpResponse(rows())


def _answers_502(request: HttpRequest) -> HttpResponse:
    return HttpResponse("upstream", status=502)


def _api_error_not_in_shape(request: HttpRequest) -> HttpResponse:
    return HttpResponse("nope", status=400)


urlpatterns = [
    path("api/raises", _RaisingApiView.as_view()),
    path("raises", _raising_page),
    path("stream", _stream_that_breaks),
    path("bad-gateway", _answers_502),
    path("api/unshaped", _api_error_not_in_shape),
    path("fine", lambda request: HttpResponse("ok")),
]


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("template", "found"),
    [
        ("api/raises", "GET /api/raises (anonymous, junk JSON): 500"),
        ("raises", "GET /raises (anonymous, empty body): 500"),
        ("stream", "GET /stream (anonymous, empty body): the streamed body raised"),
        ("bad-gateway", "GET /bad-gateway (anonymous, junk JSON): 502"),
        ("api/unshaped", "GET /api/unshaped (the Owner, empty body): 400 is not JSON"),
        ("fine", None),
    ],
)
def test_the_walk_reports_a_5xx_however_django_produces_it(template, found, db):
    route = Route(None, template, None, regex=False)
    reported = list(knock(route, World()))
    if found is None:
        assert reported == []
    else:
        assert any(line.startswith(found) for line in reported), reported
