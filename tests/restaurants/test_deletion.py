"""Account deletion from the Owner's side: the request, the read-only grace period, the cancel.

The purge itself (after the grace period) is tested in test_purge.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from nordkestrel.errors import ConflictError
from payments.models import Payment
from payments.services import CardPayment, payment_start
from restaurants import deletion
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import api_client, make_shop, signed_token, token_for
from tests.support.stripe_server import event

pytestmark = pytest.mark.django_db

URL = "/api/v1/restaurant/deletion"


def send(client: Client, method: str, url: str = URL, body: object = None):
    if method == "get":
        return client.get(url)
    return getattr(client, method)(
        url, data=json.dumps(body if body is not None else {}), content_type="application/json"
    )


def request_deletion(member, name: str = "Ours"):
    return send(api_client(member), "post", body={"confirm_name": name})


def fresh(restaurant: Restaurant) -> Restaurant:
    return Restaurant.objects.get(pk=restaurant.pk)


def schedule(restaurant: Restaurant) -> tuple[datetime, datetime]:
    """(requested at, purge after) of a restaurant pending deletion."""
    restaurant = fresh(restaurant)
    assert restaurant.deletion_requested_at is not None and restaurant.purge_after is not None
    return restaurant.deletion_requested_at, restaurant.purge_after


def audited(restaurant: Restaurant, action: str) -> list[AuditEvent]:
    with tenant_context(restaurant):
        return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def dashboard(member) -> Client:
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token_for(member)
    return client


def storefront_menu(slug: str) -> int:
    return Client().get("/api/v1/storefront/menu", HTTP_HOST=f"{slug}.localhost").status_code


def storefront_page(slug: str) -> int:
    return Client().get("/", HTTP_HOST=f"{slug}.localhost").status_code


@pytest.fixture
def shops(restaurants):
    return {restaurant.slug: make_shop(restaurant) for restaurant in restaurants}


# --- The request -----------------------------------------------------------------------------


def test_the_owners_request_closes_the_restaurant_at_once(
    roster, restaurants, shops, django_capture_on_commit_callbacks
):
    ours, theirs = restaurants
    owner = roster[("ours", "owner")]
    assert storefront_menu("ours") == 200  # the host lookup is now cached
    assert storefront_page("ours") == 200
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        response = request_deletion(owner)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["pending"] is True and body["can_cancel"] is True
    assert body["grace_days"] == 14
    assert fresh(ours).status == Restaurant.Status.PENDING_DELETION
    requested_at, purge_after = schedule(ours)
    assert requested_at >= before
    assert purge_after == requested_at + timedelta(days=14)
    assert body["purge_after"] == purge_after.isoformat().replace("+00:00", "Z")
    # The storefront (pages and API) stops answering at once; the other restaurant's does not.
    assert storefront_menu("ours") == 404
    assert storefront_page("ours") == 404
    assert storefront_menu("theirs") == 200
    assert fresh(theirs).status == Restaurant.Status.ACTIVE
    [event_] = audited(ours, "restaurant.deletion_requested")
    assert event_.actor_id == owner.pk
    assert event_.changes["status"] == {"before": "active", "after": "pending_deletion"}
    # Everyone on the staff sees the schedule.
    status = api_client(roster[("ours", "kitchen")]).get(URL)
    assert status.status_code == 200
    assert status.json()["pending"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"confirm_name": "ours"},
        {"confirm_name": "OURS"},
        {"confirm_name": "Our"},
        {"confirm_name": ""},
        {"confirm_name": 7},
        {"confirm_name": None},
        {},
        {"confirm_name": "Ours", "restaurant": 2},
        ["Ours"],
    ],
)
def test_a_wrong_confirmation_is_400_and_changes_nothing(roster, restaurants, body):
    response = send(api_client(roster[("ours", "owner")]), "post", body=body)
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"type", "code", "detail", "attr", "errors"}
    assert fresh(restaurants[0]).status == Restaurant.Status.ACTIVE
    assert audited(restaurants[0], "restaurant.deletion_requested") == []


def test_the_name_must_match_exactly(roster, restaurants):
    response = request_deletion(roster[("ours", "owner")], "ours")
    assert response.json()["code"] == "name_mismatch"
    assert response.json()["attr"] == "confirm_name"
    # Another restaurant's name is no confirmation either.
    assert request_deletion(roster[("ours", "owner")], "Theirs").status_code == 400
    assert fresh(restaurants[0]).status == Restaurant.Status.ACTIVE


@pytest.mark.parametrize("role", ["admin", "manager", "cashier", "kitchen"])
def test_only_the_owner_may_delete_or_cancel(roster, restaurants, role):
    member = roster[("ours", role)]
    response = request_deletion(member)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert fresh(restaurants[0]).status == Restaurant.Status.ACTIVE
    assert request_deletion(roster[("ours", "owner")]).status_code == 200
    cancel = send(api_client(member), "delete")
    assert cancel.status_code == 403
    assert fresh(restaurants[0]).status == Restaurant.Status.PENDING_DELETION


def test_deletion_needs_a_recent_second_factor_when_the_restaurant_asks(roster, restaurants):
    ours = restaurants[0]
    ours.require_mfa_for_sensitive_actions = True
    ours.save()
    owner = roster[("ours", "owner")]

    def client(fva):
        return Client(HTTP_AUTHORIZATION=f"Bearer {signed_token(owner, fva=fva)}")

    for stale in [(0, -1), (3, 11)]:
        response = send(client(stale), "post", body={"confirm_name": "Ours"})
        assert response.status_code == 403
        assert response.json()["code"] == "reverification_required"
    assert fresh(ours).status == Restaurant.Status.ACTIVE
    assert send(client((0, 2)), "post", body={"confirm_name": "Ours"}).status_code == 200
    # The cancel is as sensitive as the request.
    refused = send(client((0, -1)), "delete")
    assert refused.status_code == 403
    assert refused.json()["code"] == "reverification_required"
    assert fresh(ours).status == Restaurant.Status.PENDING_DELETION
    assert send(client((1, 1)), "delete").status_code == 200
    assert fresh(ours).status == Restaurant.Status.ACTIVE


def test_a_second_request_is_a_conflict(roster, restaurants):
    owner = roster[("ours", "owner")]
    assert request_deletion(owner).status_code == 200
    _, purge_after = schedule(restaurants[0])
    again = request_deletion(owner)
    assert again.status_code == 409
    assert again.json()["code"] == "deletion_pending"
    assert fresh(restaurants[0]).purge_after == purge_after, "the schedule is not pushed back"


# --- Read-only while pending -------------------------------------------------------------------


def test_the_api_is_read_only_while_pending(roster, restaurants, shops):
    owner = roster[("ours", "owner")]
    assert request_deletion(owner).status_code == 200
    client = api_client(owner)

    for method, url, body in [
        ("patch", "/api/v1/restaurant", {"phone": "+358 40 1"}),
        ("post", "/api/v1/menus", {"name": "Dinner"}),
        ("post", "/api/v1/promotions", {"code": "LATE", "kind": "percent", "value": 10}),
        ("post", f"/api/v1/items/{shops['ours']['fries']}/sold-out", {"sold_out": True}),
    ]:
        response = send(client, method, url, body)
        assert response.status_code == 409, (url, response.content)
        assert response.json()["code"] == "restaurant_pending_deletion"
        assert "purged on" in response.json()["detail"]
    restaurant = fresh(restaurants[0])
    assert restaurant.phone == ""
    # Reads go on.
    settings_read = client.get("/api/v1/restaurant")
    assert settings_read.status_code == 200
    assert settings_read.json()["status"] == "pending_deletion"
    assert client.get("/api/v1/menus").status_code == 200
    # A role without the scope still learns only that (403, not the restaurant's state).
    kitchen = send(api_client(roster[("ours", "kitchen")]), "patch", "/api/v1/restaurant", {})
    assert kitchen.status_code == 403
    # The other restaurant is untouched.
    their_owner = api_client(roster[("theirs", "owner")])
    assert send(their_owner, "patch", "/api/v1/restaurant", {"phone": "+358 1"}).status_code == 200


def test_the_dashboard_is_read_only_while_pending(roster, restaurants):
    owner = roster[("ours", "owner")]
    assert request_deletion(owner).status_code == 200
    _, purge_after = schedule(restaurants[0])

    refused = dashboard(owner).post("/dashboard/settings", {"name": "Renamed"})
    assert refused.status_code == 409
    assert b"read-only" in refused.content
    assert fresh(restaurants[0]).name == "Ours"
    page = dashboard(owner).get("/dashboard/")
    assert page.status_code == 200
    banner = page.content.decode()
    assert 'data-testid="closing-banner"' in banner
    assert purge_after.strftime("%Y-%m-%d %H:%M") in banner
    assert reverse("dashboard:deletion") in banner, "the Owner gets the way to cancel"
    manager_page = dashboard(roster[("ours", "manager")]).get("/dashboard/orders")
    assert manager_page.status_code == 200
    assert b'data-testid="closing-banner"' in manager_page.content
    assert b"the Owner can cancel" in manager_page.content
    assert reverse("dashboard:deletion").encode() not in manager_page.content
    # The other restaurant shows no banner and takes changes.
    theirs = dashboard(roster[("theirs", "owner")])
    assert b"closing-banner" not in theirs.get("/dashboard/").content


def test_webhooks_are_still_applied_while_pending(roster, restaurants, stripe_stand_in):
    from tests.payments.money_support import connect_cards, deliver, paid_order

    ours = restaurants[0]
    ids = connect_cards(ours)
    payment = paid_order(stripe_stand_in, ours, ids)
    assert request_deletion(roster[("ours", "owner")]).status_code == 200
    charge = {
        "id": payment.charge_id,
        "object": "charge",
        "amount": payment.amount,
        "amount_refunded": 500,
        "currency": payment.currency.lower(),
        "payment_intent": payment.payment_intent_id,
        "refunded": False,
    }
    deliver(event("charge.refunded", charge, account=payment.account_id))
    with tenant_context(ours):
        assert Payment.objects.get(pk=payment.pk).amount_refunded == 500


def test_card_checkout_is_closed_while_pending(roster, restaurants, stripe_stand_in):
    from tests.payments.test_webhooks import card_order, connect_cards

    ours = restaurants[0]
    ids = connect_cards(ours)
    with tenant_context(ours):
        assert CardPayment().offered(fresh(ours))
    # An order placed just before the request cannot start its card payment afterwards.
    waiting = card_order(ours, ids)
    with tenant_context(ours):
        Payment.objects.filter(pk=waiting.pk).delete()
    assert request_deletion(roster[("ours", "owner")]).status_code == 200
    with tenant_context(ours):
        assert not CardPayment().offered(fresh(ours))
        with pytest.raises(ConflictError):
            payment_start(order=waiting.order)
    assert len(stripe_stand_in.posts("/v1/payment_intents")) == 1, "no new PaymentIntent"


# --- Cancel ----------------------------------------------------------------------------------


def test_cancel_reopens_the_restaurant(
    roster, restaurants, shops, django_capture_on_commit_callbacks
):
    ours = restaurants[0]
    owner = roster[("ours", "owner")]
    with django_capture_on_commit_callbacks(execute=True):
        assert request_deletion(owner).status_code == 200
    assert storefront_menu("ours") == 404

    with django_capture_on_commit_callbacks(execute=True):
        response = send(api_client(owner), "delete")

    assert response.status_code == 200, response.content
    assert response.json()["pending"] is False
    restaurant = fresh(ours)
    assert restaurant.status == Restaurant.Status.ACTIVE
    assert restaurant.deletion_requested_at is None and restaurant.purge_after is None
    assert storefront_menu("ours") == 200
    assert storefront_page("ours") == 200
    [cancelled] = audited(ours, "restaurant.deletion_cancelled")
    assert cancelled.actor_id == owner.pk
    # Changes are taken again.
    client = api_client(owner)
    assert send(client, "patch", "/api/v1/restaurant", {"phone": "+358 9"}).status_code == 200


def test_cancel_without_a_request_is_a_conflict(roster, restaurants):
    response = send(api_client(roster[("ours", "owner")]), "delete")
    assert response.status_code == 409
    assert response.json()["code"] == "deletion_not_pending"
    assert audited(restaurants[0], "restaurant.deletion_cancelled") == []


def test_no_cancel_once_the_purge_has_begun(roster, restaurants):
    ours = restaurants[0]
    owner = roster[("ours", "owner")]
    assert request_deletion(owner).status_code == 200
    Restaurant.objects.filter(pk=ours.pk).update(purge_started_at=timezone.now())
    response = send(api_client(owner), "delete")
    assert response.status_code == 409
    assert response.json()["code"] == "purge_started"
    assert fresh(ours).status == Restaurant.Status.PENDING_DELETION
    assert api_client(owner).get(URL).json()["can_cancel"] is False


# --- The dashboard page ------------------------------------------------------------------------


def test_the_owner_deletes_and_cancels_from_the_dashboard(roster, restaurants):
    ours = restaurants[0]
    client = dashboard(roster[("ours", "owner")])
    page = client.get("/dashboard/deletion")
    assert page.status_code == 200
    assert b'data-testid="request-deletion"' in page.content
    assert b"14 days" in page.content
    assert b'data-testid="deletion-link"' in client.get("/dashboard/settings").content

    wrong = client.post("/dashboard/deletion", {"action": "request", "confirm_name": "ours"})
    assert wrong.status_code == 400
    assert b"exactly" in wrong.content
    assert fresh(ours).status == Restaurant.Status.ACTIVE

    done = client.post("/dashboard/deletion", {"action": "request", "confirm_name": "Ours"})
    assert done.status_code == 302
    assert fresh(ours).status == Restaurant.Status.PENDING_DELETION
    pending = client.get("/dashboard/deletion")
    assert b'data-testid="cancel-deletion"' in pending.content

    cancelled = client.post("/dashboard/deletion", {"action": "cancel"})
    assert cancelled.status_code == 302
    assert fresh(ours).status == Restaurant.Status.ACTIVE
    assert len(audited(ours, "restaurant.deletion_cancelled")) == 1


def test_only_the_owner_sees_the_deletion_page(roster):
    for role in ["admin", "manager", "cashier", "kitchen"]:
        client = dashboard(roster[("ours", role)])
        assert client.get("/dashboard/deletion").status_code == 403
        assert b"deletion-link" not in client.get("/dashboard/settings").content


# --- The grace period ------------------------------------------------------------------------


def test_the_grace_period_follows_the_setting(roster, restaurants, settings):
    settings.ACCOUNT_DELETION_GRACE_DAYS = 3
    assert request_deletion(roster[("ours", "owner")]).status_code == 200
    requested_at, purge_after = schedule(restaurants[0])
    assert purge_after - requested_at == timedelta(days=3)


def test_the_grace_period_never_exceeds_30_days(settings):
    settings.ACCOUNT_DELETION_GRACE_DAYS = 90
    assert deletion.grace_days() == 30
    settings.ACCOUNT_DELETION_GRACE_DAYS = -5
    assert deletion.grace_days() == 1


def _load_settings(days: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "nordkestrel.settings",
        # Parsed, never connected to: loading the settings needs no database.
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/unused",
        "ACCOUNT_DELETION_GRACE_DAYS": days,
    }
    code = "import django; django.setup(); from django.conf import settings; "
    code += "print(settings.ACCOUNT_DELETION_GRACE_DAYS)"
    return subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("days", ["31", "0", "365"])
def test_settings_refuse_a_grace_period_outside_1_to_30_days(days):
    loaded = _load_settings(days)
    assert loaded.returncode != 0
    assert "ACCOUNT_DELETION_GRACE_DAYS must be between 1 and 30" in loaded.stderr


def test_settings_take_a_grace_period_of_30_days():
    loaded = _load_settings("30")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "30"


def test_only_exports_and_the_deletion_itself_write_while_pending():
    """Read-only is the rule: a view that opts out is one of these, on purpose."""
    from django.urls import URLPattern, URLResolver, get_resolver

    from dashboard.base import DashboardView
    from staff.api_base import TenantAPIView

    def views(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from views(pattern.url_patterns)
            elif isinstance(pattern, URLPattern) and hasattr(pattern.callback, "view_class"):
                yield pattern.callback.view_class

    opted_out = {
        f"{view.__module__}.{view.__name__}"
        for view in views(get_resolver().url_patterns)
        if issubclass(view, TenantAPIView | DashboardView) and view.allowed_while_closing
    }
    allowed_modules = ("exports.", "dashboard.export_views.")
    assert {
        "restaurants.api.RestaurantDeletionView",
        "dashboard.deletion_views.DeletionView",
    } <= opted_out
    assert {
        name
        for name in opted_out
        if not name.startswith(allowed_modules)
        and name
        not in {
            "restaurants.api.RestaurantDeletionView",
            "dashboard.deletion_views.DeletionView",
            "dashboard.views.SwitchRestaurantView",
        }
    } == set()
