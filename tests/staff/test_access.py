"""The access chain both front doors share (staff/access.py): credentials plug in by
registration, views declare typed scopes and cannot override what the base owns, and the
dashboard requires scopes (with the recent second factor) as the API does."""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.request import Request
from rest_framework.response import Response

from dashboard.base import DashboardView
from staff.access import Credential, CredentialRefused, FrontDoor, register, unregister
from staff.api_base import TenantAPIView
from staff.auth import Actor
from staff.models import StaffMember
from staff.roles import Scope
from tenants.context import tenant_bypass
from tenants.models import Restaurant
from tests.factories import api_client, signed_token

# Not the real keys' prefix (apikeys/), so this stand-in is told apart from them.
PREFIX = "tk_test_"


class KeyCredential(Credential):
    """A credential of the kind API keys are: ``Bearer tk_...``, API only."""

    front_doors = frozenset({FrontDoor.API})
    order = 5
    openapi_name = "TestKey"
    openapi_scheme = {"type": "http", "scheme": "bearer", "description": "A test key."}

    def read(self, request, door):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith(f"Bearer {PREFIX}"):
            return None
        return header.removeprefix("Bearer ")

    def authenticate(self, credential, scope):
        with tenant_bypass():
            member = (
                StaffMember.unscoped.select_related("restaurant")
                .filter(pk=credential.removeprefix(PREFIX), active=True)
                .first()
            )
        if member is None:
            raise CredentialRefused("unknown_key", "This key is not valid.")
        scope.enter(member.restaurant)
        return Actor(member=member)


@pytest.fixture
def api_keys():
    register(KeyCredential)
    yield KeyCredential
    unregister(KeyCredential)


def key_client(member):
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {PREFIX}{member.pk}")


# --- Credentials -----------------------------------------------------------------------------


# The credential's lookup crosses restaurants as the platform role, which sees committed rows.
@pytest.mark.django_db(transaction=True)
class TestRegisteredCredential:
    def test_a_registered_class_admits_its_credential(self, roster, api_keys):
        cashier = roster[("ours", "cashier")]
        response = key_client(cashier).get(reverse("api-me"))
        assert response.status_code == 200
        assert response.json()["user"]["staff_id"] == cashier.pk
        assert response.json()["role"] == "cashier"
        # The same policy decides: a cashier's key is refused what a cashier is refused.
        refused = key_client(cashier).get(reverse("api-staff-list"))
        assert refused.status_code == 403
        assert refused.json()["code"] == "permission_denied"

    def test_it_is_tried_before_the_clerk_session(self, roster, api_keys):
        response = key_client(roster[("ours", "owner")]).get(reverse("api-staff-list"))
        assert response.status_code == 200
        assert {row["id"] for row in response.json()["results"]} == {
            member.pk for (slug, _), member in roster.items() if slug == "ours"
        }
        # Clerk sessions still work beside it.
        assert api_client(roster[("theirs", "owner")]).get(reverse("api-me")).status_code == 200

    def test_its_refusal_is_the_apis_401(self, roster, api_keys):
        response = Client().get(reverse("api-me"), HTTP_AUTHORIZATION=f"Bearer {PREFIX}0")
        assert response.status_code == 401
        assert response.json()["code"] == "unknown_key"
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'

    def test_unregistered_the_clerk_session_refuses_it(self, roster):
        response = key_client(roster[("ours", "owner")]).get(reverse("api-me"))
        assert response.status_code == 401
        assert response.json()["type"] == "authentication_error"

    def test_an_api_only_credential_never_opens_the_dashboard(self, roster, api_keys):
        owner = roster[("ours", "owner")]
        in_header = key_client(owner).get("/dashboard/")
        assert in_header.status_code == 302
        assert "sign-in" in in_header["Location"]
        client = Client()
        client.cookies["__session"] = f"{PREFIX}{owner.pk}"
        in_cookie = client.get("/dashboard/")
        assert in_cookie.status_code == 302
        assert in_cookie.cookies["__session"].value == ""

    def test_the_schema_offers_either_credential(self, api_keys):
        schema = (
            Client().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
        )
        assert set(schema["components"]["securitySchemes"]) == {"ClerkSession", "ApiKey", "TestKey"}
        me = schema["paths"]["/api/v1/me"]["get"]
        assert {"ClerkSession": []} in me["security"]
        assert {"TestKey": []} in me["security"]
        assert {"ApiKey": []} in me["security"]

    def test_a_credential_names_its_front_doors(self):
        class Nowhere(Credential):
            pass

        with pytest.raises(TypeError, match="front doors"):
            register(Nowhere)


# --- Declarations ----------------------------------------------------------------------------


def get(self, request: Request) -> Response:
    return Response({})


class TestDeclarations:
    @pytest.mark.parametrize("scope", ["menus:read", "menus:publsh", None])
    def test_a_scope_that_is_not_the_enum_fails_at_class_creation(self, scope):
        with pytest.raises(TypeError, match="not a Scope"):
            type("Typo", (TenantAPIView,), {"scopes": {"get": scope}, "get": get})
        with pytest.raises(TypeError, match="not a Scope"):
            type("TypoPage", (DashboardView,), {"scopes": {"get": scope}, "get": get})

    def test_an_unknown_scope_name_fails_at_import(self):
        with pytest.raises(AttributeError):
            Scope.MENUS_PUBLSH  # type: ignore[attr-defined]  # noqa: B018
        with pytest.raises(ValueError, match="menus:publsh"):
            Scope("menus:publsh")

    def test_a_scope_for_something_that_is_not_a_method_fails(self):
        with pytest.raises(TypeError, match="not a handler method"):
            type("Gett", (TenantAPIView,), {"scopes": {"gett": Scope.MENUS_READ}, "get": get})

    def test_every_handler_needs_its_scope(self):
        with pytest.raises(TypeError, match=r"missing \['post'\]"):
            type(
                "Half", (TenantAPIView,),
                {"scopes": {"get": Scope.MENUS_READ}, "get": get, "post": get},
            )  # fmt: skip
        with pytest.raises(TypeError, match=r"missing \['post'\]"):
            type(
                "HalfPage", (DashboardView,),
                {"scopes": {"get": Scope.MENUS_READ}, "get": get, "post": get},
            )  # fmt: skip
        declared = type("Fine", (TenantAPIView,), {"scopes": {"get": Scope.MENUS_READ}, "get": get})
        assert declared.scopes == {"get": Scope.MENUS_READ}  # type: ignore[attr-defined]

    @pytest.mark.parametrize("hook", TenantAPIView.sealed_hooks)
    def test_the_api_base_owns_its_hooks(self, hook):
        with pytest.raises(TypeError, match=f"may not override {hook}"):
            type(
                "Sneaky", (TenantAPIView,),
                {"scopes": {"get": Scope.MENUS_READ}, "get": get, hook: get},
            )  # fmt: skip

    @pytest.mark.parametrize("hook", DashboardView.sealed_hooks)
    def test_the_dashboard_base_owns_its_hooks(self, hook):
        with pytest.raises(TypeError, match=f"may not override {hook}"):
            type(
                "SneakyPage", (DashboardView,),
                {"scopes": {"get": Scope.MENUS_READ}, "get": get, hook: get},
            )  # fmt: skip

    def test_even_an_intermediate_class_cannot_reopen_a_hook(self):
        with pytest.raises(TypeError, match="may not override get_queryset"):
            type("Base", (TenantAPIView,), {"abstract": True, "get_queryset": get})

    @pytest.mark.django_db
    def test_checking_a_string_is_a_bug_not_a_403(self, roster):
        """The type checker refuses these lines; at run time they fail loudly too."""
        actor = Actor(member=roster[("ours", "owner")])
        with pytest.raises(TypeError, match="not a Scope"):
            actor.require("menus:read")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not a Scope"):
            actor.has("menus:read")  # type: ignore[arg-type]


# --- The dashboard runs the same chain -------------------------------------------------------


def page_client(member, fva=(0, 0)):
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = signed_token(member, fva=fva)
    return client


@pytest.mark.django_db
class TestDashboardChain:
    def test_a_sensitive_page_asks_for_a_recent_second_factor(self, roster, restaurants):
        ours = restaurants[0]
        ours.require_mfa_for_sensitive_actions = True
        ours.save()
        owner = roster[("ours", "owner")]
        stale = page_client(owner, fva=(0, -1))
        # Asked before the form is even shown, as the API asks before the action.
        page = stale.get("/dashboard/deletion")
        assert page.status_code == 403
        assert "Verify your second factor again" in page.content.decode()
        refused = stale.post("/dashboard/deletion", {"action": "request", "confirm_name": "Ours"})
        assert refused.status_code == 403
        assert "Verify your second factor again" in refused.content.decode()
        assert Restaurant.objects.get(pk=ours.pk).status == Restaurant.Status.ACTIVE
        # What is not sensitive does not ask.
        assert stale.get("/dashboard/").status_code == 200
        assert stale.get("/dashboard/payouts").status_code == 200
        fresh = page_client(owner, fva=(0, 2))
        done = fresh.post("/dashboard/deletion", {"action": "request", "confirm_name": "Ours"})
        assert done.status_code == 302
        assert Restaurant.objects.get(pk=ours.pk).status == Restaurant.Status.PENDING_DELETION

    def test_a_method_without_a_scope_of_its_own_follows_get(self, roster):
        """As on the API: HEAD reads; a method the page does not answer is 405 to whoever may
        read the page, and 403 to anyone else."""
        kitchen = page_client(roster[("ours", "kitchen")])
        assert kitchen.head("/dashboard/").status_code == 200
        assert kitchen.post("/dashboard/").status_code == 405
        assert kitchen.head("/dashboard/audit").status_code == 403
        assert kitchen.post("/dashboard/audit").status_code == 403
