import json

import pytest
from django.urls import reverse

from staff.models import StaffMember
from staff.roles import Role
from tenants.context import tenant_context
from tests.factories import api_client, make_staff, signed_token, token_for

pytestmark = pytest.mark.django_db


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def patch(client, url, body):
    return client.patch(url, data=json.dumps(body), content_type="application/json")


def test_me_says_who_which_restaurant_role_and_scopes(roster):
    cashier = roster[("ours", "cashier")]
    body = api_client(cashier).get(reverse("api-me")).json()
    assert body["user"]["clerk_user_id"] == cashier.clerk_user_id
    assert body["restaurant"]["slug"] == "ours"
    assert body["role"] == "cashier"
    assert "orders:contact" in body["scopes"]
    assert "staff:read" not in body["scopes"]
    assert [m["slug"] for m in body["memberships"]] == ["ours"]


def test_me_lists_every_restaurant_of_the_same_person(restaurants):
    ours, theirs = restaurants
    here = make_staff(ours, Role.OWNER, clerk_user_id="user_both")
    make_staff(theirs, Role.KITCHEN, clerk_user_id="user_both")
    body = api_client(here).get(reverse("api-me")).json()
    assert {(m["slug"], m["role"]) for m in body["memberships"]} == {
        ("ours", "owner"),
        ("theirs", "kitchen"),
    }


def test_the_roster_decides_the_role_not_the_token(roster):
    cashier = roster[("ours", "cashier")]
    token = token_for(cashier)  # the token says org role "member"; the roster says cashier
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(reverse("api-staff-list")).status_code == 403


def test_a_deactivated_member_is_refused(roster, restaurants):
    member = roster[("ours", "manager")]
    client = api_client(member)
    with tenant_context(restaurants[0]):
        StaffMember.objects.filter(pk=member.pk).update(active=False)
    response = client.get(reverse("api-me"))
    assert response.status_code == 403
    assert response.json()["code"] == "not_on_roster"


def test_someone_not_on_the_roster_is_refused(restaurants):
    from django.test import Client

    from staff.dev import mint_token

    token = mint_token(
        clerk_user_id="user_stranger", organization_id="org_ours", email="s@example.com"
    )
    response = Client().get(reverse("api-me"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 403
    assert response.json()["code"] == "not_on_roster"


def test_an_unknown_organization_is_refused(restaurants):
    from django.test import Client

    from staff.dev import mint_token

    token = mint_token(clerk_user_id="u", organization_id="org_nobody", email="u@example.com")
    response = Client().get(reverse("api-me"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 403
    assert response.json()["code"] == "unknown_organization"


def test_invitation_is_claimed_at_first_sign_in(roster, restaurants):
    from django.test import Client

    from staff.dev import mint_token

    owner_client = api_client(roster[("ours", "owner")])
    invited = post(
        owner_client,
        reverse("api-staff-list"),
        {"email": "Newcomer@Example.com", "name": "New", "role": "cashier"},
    )
    assert invited.status_code == 201
    assert invited.json()["pending"] is True
    token = mint_token(
        clerk_user_id="user_newcomer", organization_id="org_ours", email="newcomer@example.com"
    )
    me = Client().get(reverse("api-me"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert me.status_code == 200
    assert me.json()["role"] == "cashier"
    with tenant_context(restaurants[0]):
        member = StaffMember.objects.get(pk=invited.json()["id"])
    assert member.clerk_user_id == "user_newcomer"
    assert member.joined_at is not None


def test_an_invitation_is_not_claimed_in_another_restaurant(roster):
    from django.test import Client

    from staff.dev import mint_token

    post(
        api_client(roster[("ours", "owner")]),
        reverse("api-staff-list"),
        {"email": "only-ours@example.com", "role": "kitchen"},
    )
    token = mint_token(
        clerk_user_id="user_x", organization_id="org_theirs", email="only-ours@example.com"
    )
    assert Client().get(reverse("api-me"), HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 403


def test_staff_list_is_paginated_with_a_cursor(roster, restaurants):
    client = api_client(roster[("ours", "owner")])
    first = client.get(reverse("api-staff-list"), {"page_size": 2}).json()
    assert len(first["results"]) == 2
    assert first["next"]
    second = client.get(first["next"]).json()
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert len(ids) == len(set(ids)) == 4


def test_invite_validation_names_the_field(roster):
    response = post(
        api_client(roster[("ours", "owner")]),
        reverse("api-staff-list"),
        {"email": "not-an-email", "role": "kitchen"},
    )
    assert response.status_code == 400
    assert response.json()["attr"] == "email"
    response = post(
        api_client(roster[("ours", "owner")]),
        reverse("api-staff-list"),
        {"email": "ok@example.com", "role": "emperor"},
    )
    assert (response.status_code, response.json()["attr"]) == (400, "role")


def test_last_owner_conflict_through_the_api(roster):
    owner = roster[("ours", "owner")]
    response = patch(
        api_client(owner), reverse("api-staff-detail", kwargs={"pk": owner.pk}), {"role": "admin"}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "last_owner"
    response = api_client(owner).post(reverse("api-staff-deactivate", kwargs={"pk": owner.pk}))
    assert response.status_code == 409


def test_admin_cannot_touch_an_owner_through_the_api(roster):
    owner = roster[("ours", "owner")]
    client = api_client(roster[("ours", "admin")])
    url = reverse("api-staff-detail", kwargs={"pk": owner.pk})
    assert patch(client, url, {"role": "kitchen"}).status_code == 403
    assert client.post(reverse("api-staff-deactivate", kwargs={"pk": owner.pk})).status_code == 403


def test_staff_changes_need_recent_mfa_when_required(roster, restaurants):
    from django.test import Client

    ours = restaurants[0]
    ours.require_mfa_for_sensitive_actions = True
    ours.save()
    owner = roster[("ours", "owner")]
    url = reverse("api-staff-list")
    body = {"email": "mfa@example.com", "role": "kitchen"}

    def token(fva):
        return signed_token(owner, fva=fva)

    for fva in [(0, -1), (3, 11)]:
        response = post(Client(HTTP_AUTHORIZATION=f"Bearer {token(fva)}"), url, body)
        assert response.status_code == 403
        assert response.json()["code"] == "reverification_required"
    # Reading staff is not sensitive; a fresh second factor lets the change through.
    assert Client(HTTP_AUTHORIZATION=f"Bearer {token((0, -1))}").get(url).status_code == 200
    response = post(Client(HTTP_AUTHORIZATION=f"Bearer {token((1, 2))}"), url, body)
    assert response.status_code == 201


def statements(captured):
    """The request's own SQL, without the savepoints of the test's surrounding transaction."""
    return [
        q["sql"]
        for q in captured.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


@pytest.mark.parametrize("rows", [1, 50])
def test_staff_list_queries_do_not_grow_with_rows(restaurants, rows, django_assert_num_queries):
    ours = restaurants[0]
    owner = make_staff(ours, Role.OWNER)
    for _ in range(rows - 1):
        make_staff(ours, Role.KITCHEN)
    client = api_client(owner)
    client.get(reverse("api-me"))  # warms the organization → restaurant cache
    # set_config (tenant) + roster-with-restaurant + the page + restoring the outer setting,
    # plus the savepoint pair that the test's own transaction adds around the request.
    with django_assert_num_queries(6) as captured:
        response = client.get(reverse("api-staff-list"))
    assert len(response.json()["results"]) == rows
    assert len(statements(captured)) == 4


def test_authentication_is_one_query_for_restaurant_and_roster(roster, django_assert_num_queries):
    client = api_client(roster[("ours", "owner")])
    client.get(reverse("api-me"))
    with django_assert_num_queries(5) as captured:
        assert client.get(reverse("api-restaurant")).status_code == 200
    sql = statements(captured)
    # In production the request's transaction is the outermost: no restore is needed there.
    assert sum("set_config" in s for s in sql) == 2, "enter, then restore the test's tx"
    lookups = [s for s in sql if "set_config" not in s]
    assert len(lookups) == 1
    assert "staff_staffmember" in lookups[0]
    assert "tenants_restaurant" in lookups[0]


@pytest.mark.parametrize("position", ["abc", "1e999", "-", "2026-99-99"])
def test_a_forged_cursor_is_a_404_not_a_500(roster, position):
    import base64

    cursor = base64.b64encode(f"p={position}".encode()).decode()
    response = api_client(roster[("ours", "owner")]).get(f"/api/v1/staff?cursor={cursor}")
    assert response.status_code == 404
    assert response.json()["detail"] == "Invalid cursor"
