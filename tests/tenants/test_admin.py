import pytest
from django.forms.models import model_to_dict
from django.urls import reverse

from tests.factories import api_client

pytestmark = pytest.mark.django_db


def test_reassigned_organization_takes_effect_at_once(admin_client, roster, restaurants):
    ours = restaurants[0]
    owner = roster[("ours", "owner")]
    assert api_client(owner).get(reverse("api-me")).status_code == 200  # caches the lookup
    form = {k: ("" if v is None else v) for k, v in model_to_dict(ours).items()}
    form["clerk_organization_id"] = "org_ours_new"
    response = admin_client.post(reverse("admin:tenants_restaurant_change", args=[ours.pk]), form)
    assert response.status_code == 302, response.content[:500]
    assert api_client(owner).get(reverse("api-me")).status_code == 403, "old organization"
    owner.restaurant.clerk_organization_id = "org_ours_new"
    assert api_client(owner).get(reverse("api-me")).status_code == 200


def test_restaurant_admin_lists_restaurants(admin_client, restaurants):
    response = admin_client.get(reverse("admin:tenants_restaurant_changelist"))
    assert response.status_code == 200
    assert b"Theirs" in response.content


def test_suspending_a_restaurant_closes_its_storefront_at_once(admin_client, restaurants):
    from django.test import Client

    from tenants.selectors import restaurant_id_for_host

    ours = restaurants[0]
    assert restaurant_id_for_host("ours.localhost") == ours.pk  # now cached
    form = {k: ("" if v is None else v) for k, v in model_to_dict(ours).items()}
    form["status"] = "suspended"
    admin_client.post(reverse("admin:tenants_restaurant_change", args=[ours.pk]), form)
    assert restaurant_id_for_host("ours.localhost") is None
    assert Client().get("/api/v1/storefront/menu", HTTP_HOST="ours.localhost").status_code == 404
