import pytest
from django.test import Client
from django.urls import reverse

from staff.clerk import verify_session_token
from staff.models import StaffMember
from staff.roles import Role
from tenants.context import tenant_context
from tests.factories import make_staff, token_for

pytestmark = pytest.mark.django_db


def signed_in(member, **client_kwargs):
    client = Client(raise_request_exception=False, **client_kwargs)
    client.cookies["__session"] = token_for(member)
    return client


def test_anonymous_is_sent_to_sign_in(roster):
    response = Client().get("/dashboard/staff")
    assert response.status_code == 302
    assert response["Location"] == "/dev/sign-in?next=%2Fdashboard%2Fstaff"


@pytest.mark.django_db(transaction=True)  # the sign-in page lists staff as the platform
def test_dev_sign_in_sets_a_verifiable_session_cookie(roster):
    member = roster[("ours", "manager")]
    client = Client()
    response = client.post(reverse("dev-sign-in"), {"member": member.pk, "next": "/dashboard/"})
    assert response.status_code == 302
    cookie = response.cookies["__session"]
    assert cookie["httponly"]
    session = verify_session_token(cookie.value)
    assert (session.user_id, session.org_id) == (member.clerk_user_id, "org_ours")
    home = client.get("/dashboard/")
    assert home.status_code == 200
    assert b"Ours" in home.content


@pytest.mark.django_db(transaction=True)  # the sign-in page lists staff as the platform
def test_dev_sign_in_refuses_an_offsite_next(roster):
    member = roster[("ours", "owner")]
    response = Client().post(
        reverse("dev-sign-in"), {"member": member.pk, "next": "https://evil.example.com/"}
    )
    assert response["Location"] == "/dashboard/"


def test_a_bad_cookie_is_dropped_and_sent_to_sign_in(roster):
    client = Client()
    client.cookies["__session"] = "not.a.token"
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response.cookies["__session"].value == ""


@pytest.mark.parametrize(
    ("role", "sees_staff"),
    [("owner", True), ("admin", True), ("manager", True), ("cashier", False), ("kitchen", False)],
)
def test_navigation_and_staff_page_follow_the_role(roster, role, sees_staff):
    client = signed_in(roster[("ours", role)])
    home = client.get("/dashboard/").content.decode()
    assert ('href="/dashboard/staff"' in home) is sees_staff
    assert client.get("/dashboard/staff").status_code == (200 if sees_staff else 403)


def test_dashboard_writes_need_the_csrf_token(roster):
    client = signed_in(roster[("ours", "owner")], enforce_csrf_checks=True)
    response = client.post(
        "/dashboard/staff", {"action": "invite", "email": "c@example.com", "role": "kitchen"}
    )
    assert response.status_code == 403
    with tenant_context(roster[("ours", "owner")].restaurant):
        assert not StaffMember.objects.filter(email="c@example.com").exists()


def test_owner_invites_and_changes_roles_from_the_staff_page(roster, restaurants):
    client = signed_in(roster[("ours", "owner")])
    response = client.post(
        "/dashboard/staff",
        {"action": "invite", "email": "page@example.com", "name": "Page", "role": "cashier"},
    )
    assert response.status_code == 302
    cashier = roster[("ours", "cashier")]
    client.post("/dashboard/staff", {"action": "role", "member": cashier.pk, "role": "manager"})
    client.post(
        "/dashboard/staff", {"action": "deactivate", "member": roster[("ours", "kitchen")].pk}
    )
    with tenant_context(restaurants[0]):
        assert StaffMember.objects.get(email="page@example.com").is_pending
        assert StaffMember.objects.get(pk=cashier.pk).role == Role.MANAGER
        assert not StaffMember.objects.get(pk=roster[("ours", "kitchen")].pk).active
    page = client.get("/dashboard/staff").content.decode()
    assert "page@example.com" in page
    assert roster[("theirs", "owner")].email not in page


def test_staff_page_cannot_act_on_another_restaurants_member(roster, restaurants):
    client = signed_in(roster[("ours", "owner")])
    foreign = roster[("theirs", "kitchen")]
    response = client.post("/dashboard/staff", {"action": "deactivate", "member": foreign.pk})
    assert response.status_code == 404
    with tenant_context(restaurants[1]):
        assert StaffMember.objects.get(pk=foreign.pk).active


def test_last_owner_message_on_the_staff_page(roster):
    owner = roster[("ours", "owner")]
    client = signed_in(owner)
    response = client.post(
        "/dashboard/staff", {"action": "role", "member": owner.pk, "role": "admin"}
    )
    assert response.status_code == 409
    assert b"at least one active Owner" in response.content


def test_settings_page_is_read_only_for_a_cashier_and_editable_for_an_admin(roster, restaurants):
    cashier_page = signed_in(roster[("ours", "cashier")]).get("/dashboard/settings")
    assert cashier_page.status_code == 200
    assert b"Save settings" not in cashier_page.content
    assert signed_in(roster[("ours", "cashier")]).post("/dashboard/settings", {}).status_code == 403
    admin = signed_in(roster[("ours", "admin")])
    assert b"Save settings" in admin.get("/dashboard/settings").content
    form = {
        "name": "Ours Renamed",
        "timezone": "Europe/Helsinki",
        "currency": "EUR",
        "tax_rate": "14",
        "prep_time_minutes": "15",
        "delivery_minimum": "0",
        "delivery_fee": "0",
        "pickup_enabled": "on",
    }
    assert admin.post("/dashboard/settings", form).status_code == 302
    restaurants[0].refresh_from_db()
    assert restaurants[0].name == "Ours Renamed"
    bad = admin.post("/dashboard/settings", {**form, "timezone": "Nowhere/City"})
    assert bad.status_code == 400
    assert b"not a known time zone" in bad.content


def test_switching_restaurant_keeps_the_person(restaurants):
    ours, theirs = restaurants
    here = make_staff(ours, Role.OWNER, clerk_user_id="user_two_places")
    make_staff(theirs, Role.KITCHEN, clerk_user_id="user_two_places")
    client = signed_in(here)
    assert b'name="restaurant"' in client.get("/dashboard/").content
    response = client.post("/dashboard/switch", {"restaurant": theirs.pk})
    assert response.status_code == 302
    session = verify_session_token(response.cookies["__session"].value)
    assert (session.user_id, session.org_id) == ("user_two_places", "org_theirs")
    page = client.get("/dashboard/")
    assert b"Theirs" in page.content


def test_switching_to_a_restaurant_without_membership_is_404(roster, restaurants):
    client = signed_in(roster[("ours", "owner")])
    assert client.post("/dashboard/switch", {"restaurant": restaurants[1].pk}).status_code == 404
    assert client.post("/dashboard/switch", {"restaurant": "x"}).status_code == 404


def test_admin_is_offered_only_roles_it_may_assign(roster):
    page = signed_in(roster[("ours", "admin")]).get("/dashboard/staff").content.decode()
    assert 'value="owner"' not in page
    assert 'value="admin"' in page
    owner_id = roster[("ours", "owner")].pk
    assert f'name="member" value="{owner_id}"' not in page, "no actions on an Owner's row"


def test_invite_form_defaults_to_the_least_privileged_role(roster):
    page = signed_in(roster[("ours", "owner")]).get("/dashboard/staff").content.decode()
    assert '<option value="kitchen" selected>' in page


@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard/customers", "/dashboard/kitchen"])
def test_signed_in_pages_are_never_cached(roster, path):
    response = signed_in(roster[("ours", "owner")]).get(path)
    assert response.status_code == 200
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"private", "no-store", "no-cache"} <= cache_control
