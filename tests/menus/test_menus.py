import json
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from menus.models import Item, MenuVersion
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import api_client
from tests.support.openapi import assert_matches_schema

pytestmark = pytest.mark.django_db


def call(client, method, name, body=None, **kwargs):
    url = reverse(name, kwargs=kwargs or None)
    if method == "get":
        return client.get(url)
    return getattr(client, method)(
        url, data=json.dumps(body or {}), content_type="application/json"
    )


@pytest.fixture
def manager(roster):
    return api_client(roster[("ours", "manager")])


def build_menu(client, items=3):
    menu = call(client, "post", "api-menus", {"name": "Lunch"}).json()
    category = call(client, "post", "api-menu-categories", {"name": "Mains"}, pk=menu["id"]).json()
    group = call(
        client, "post", "api-modifier-groups",
        {"name": "Size", "min_selections": 1, "max_selections": 1, "required": True},
    ).json()  # fmt: skip
    large = call(
        client, "post", "api-modifier-group-modifiers",
        {"name": "Large", "price_delta": 200}, pk=group["id"],
    ).json()  # fmt: skip
    created = [
        call(
            client, "post", "api-items",
            {"name": f"Dish {n}", "price": 1000 + n, "categories": [category["id"]],
             "modifier_groups": [group["id"]], "dietary_tags": ["vegan"]},
        ).json()
        for n in range(items)
    ]  # fmt: skip
    return menu, category, group, large, created


def storefront(host="ours.localhost", **headers):
    return Client().get(
        reverse("api-storefront-menu", urlconf="storefront.urls"), HTTP_HOST=host, **headers
    )


class TestDraft:
    def test_build_publish_and_read(self, manager):
        _menu, _category, group, _large, items = build_menu(manager)
        assert storefront().status_code == 404, "nothing published yet"
        preview = call(manager, "get", "api-menu-preview").json()
        assert len(preview["changes"]["added"]) == 3
        published = call(manager, "post", "api-menu-publish")
        assert published.status_code == 201, published.content
        assert published.json()["number"] == 1
        response = storefront()
        assert response.status_code == 200
        body = response.json()
        assert body["version"] == 1
        assert [m["name"] for m in body["menus"]] == ["Lunch"]
        assert body["menus"][0]["categories"][0]["items"] == [i["id"] for i in items]
        first = body["items"][str(items[0]["id"])]
        assert (first["price"], first["modifier_groups"]) == (1000, [group["id"]])
        assert body["modifier_groups"][str(group["id"])]["modifiers"][0]["price_delta"] == 200
        assert response["ETag"]
        assert "public" in response["Cache-Control"]

    def test_304_on_a_matching_etag(self, manager):
        build_menu(manager)
        call(manager, "post", "api-menu-publish")
        etag = storefront()["ETag"]
        again = storefront(HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304
        assert again.content == b""

    @pytest.mark.parametrize(
        ("body", "attr"),
        [
            ({"name": "Soup", "price": -1}, "price"),
            ({"name": "Soup", "price": 1.5}, "price"),
            ({"name": "", "price": 100}, "name"),
            ({"name": "Soup", "price": 100, "dietary_tags": ["Not A Tag!"]}, "dietary_tags"),
            ({"name": "Soup", "price": 100, "categories": [999999]}, "categories"),
            ({"name": "Soup", "price": 100, "sold_out": True}, "sold_out"),
            ({"name": "Soup", "price": 100, "restaurant": 1}, "restaurant"),
        ],
    )
    def test_item_validation(self, manager, body, attr):
        response = call(manager, "post", "api-items", body)
        assert response.status_code == 400
        assert response.json()["attr"] == attr
        with tenant_context(Restaurant.objects.get(slug="ours")):
            assert Item.objects.count() == 0

    @pytest.mark.parametrize(
        ("body", "attr"),
        [
            ({"name": "G", "min_selections": 3, "max_selections": 1}, "min_selections"),
            ({"name": "G", "min_selections": 0, "max_selections": 0}, "max_selections"),
        ],
    )
    def test_group_validation(self, manager, body, attr):
        response = call(manager, "post", "api-modifier-groups", body)
        assert (response.status_code, response.json()["attr"]) == (400, attr)

    @pytest.mark.parametrize(
        "availability",
        [
            [{"weekdays": [7], "start": "10:00", "end": "12:00"}],
            [{"weekdays": [1], "start": "25:00", "end": "12:00"}],
            [{"weekdays": [1], "start": "10:00", "end": "10:00"}],
            [{"weekdays": [], "start": "10:00", "end": "11:00"}],
            "always",
        ],
    )
    def test_availability_validation(self, manager, availability):
        response = call(manager, "post", "api-menus", {"name": "M", "availability": availability})
        assert response.status_code == 400
        assert response.json()["attr"].startswith("availability")

    def test_a_required_group_without_modifiers_cannot_be_published(self, manager):
        _menu, category, *_ = build_menu(manager, items=1)
        empty = call(
            manager, "post", "api-modifier-groups",
            {"name": "Sauce", "min_selections": 1, "max_selections": 1, "required": True},
        ).json()  # fmt: skip
        call(manager, "post", "api-items",
             {"name": "Fries", "price": 300, "categories": [category["id"]],
              "modifier_groups": [empty["id"]]})  # fmt: skip
        response = call(manager, "post", "api-menu-publish")
        assert response.status_code == 400
        assert "Sauce" in response.json()["detail"]

    def test_reorder_and_duplicate(self, manager):
        menu, category, _group, _large, items = build_menu(manager)
        ids = [items[2]["id"], items[0]["id"], items[1]["id"]]
        assert (
            call(
                manager, "post", "api-category-reorder", {"ids": ids}, pk=category["id"]
            ).status_code
            == 200
        )
        bad = call(manager, "post", "api-category-reorder", {"ids": ids[:2]}, pk=category["id"])
        assert bad.status_code == 400
        copy = call(manager, "post", "api-item-duplicate", pk=items[0]["id"]).json()
        assert copy["name"] == "Dish 0 (copy)"
        assert copy["categories"] == [category["id"]]
        detail = call(manager, "get", "api-menu-detail", pk=menu["id"]).json()
        assert detail["categories"][0]["items"][:3] == ids

    def test_cashier_cannot_edit_but_can_86(self, roster, manager):
        _menu, _category, _group, _large, items = build_menu(manager, items=1)
        cashier = api_client(roster[("ours", "cashier")])
        assert call(cashier, "post", "api-items", {"name": "X", "price": 1}).status_code == 403
        assert call(cashier, "post", "api-menu-publish").status_code == 403
        response = call(cashier, "post", "api-item-sold-out", {"sold_out": True}, pk=items[0]["id"])
        assert response.status_code == 200


# Real commits: the storefront learns of changes when they commit.
@pytest.mark.django_db(transaction=True)
class TestSoldOut:
    def test_takes_effect_without_publishing_and_changes_the_etag(self, roster, manager):
        _menu, _category, _group, large, items = build_menu(manager, items=2)
        call(manager, "post", "api-menu-publish")
        before = storefront()
        kitchen = api_client(roster[("ours", "kitchen")])
        call(kitchen, "post", "api-item-sold-out", {"sold_out": True}, pk=items[1]["id"])
        call(kitchen, "post", "api-modifier-sold-out", {"sold_out": True}, pk=large["id"])
        after = storefront()
        assert after.json()["sold_out"] == {"items": [items[1]["id"]], "modifiers": [large["id"]]}
        assert after["ETag"] != before["ETag"]
        assert storefront(HTTP_IF_NONE_MATCH=before["ETag"]).status_code == 200
        with tenant_context(Restaurant.objects.get(slug="ours")):
            assert MenuVersion.objects.count() == 1, "86 publishes nothing"
        call(kitchen, "post", "api-item-sold-out", {"sold_out": False}, pk=items[1]["id"])
        assert storefront().json()["sold_out"]["items"] == []


@pytest.mark.django_db(transaction=True)
class TestVersions:
    def test_rollback_restores_an_earlier_document_as_a_new_version(self, manager):
        _menu, _category, _group, _large, items = build_menu(manager, items=1)
        call(manager, "post", "api-menu-publish")
        call(manager, "patch", "api-item-detail", {"price": 5000}, pk=items[0]["id"])
        second = call(manager, "post", "api-menu-publish").json()
        assert second["changes"]["changed"][0]["fields"] == ["price"]
        assert storefront().json()["items"][str(items[0]["id"])]["price"] == 5000
        versions = call(manager, "get", "api-menu-versions").json()["results"]
        first_id = next(v["id"] for v in versions if v["number"] == 1)
        rolled = call(manager, "post", "api-menu-version-rollback", pk=first_id)
        assert rolled.status_code == 201
        assert (rolled.json()["number"], rolled.json()["rolled_back_from"]) == (3, 1)
        assert storefront().json()["items"][str(items[0]["id"])]["price"] == 1000
        again = call(manager, "post", "api-menu-version-rollback", pk=first_id)
        assert again.status_code == 409

    def test_publish_and_rollback_are_audited(self, roster, manager):
        _menu, _category, _group, _large, items = build_menu(manager, items=1)
        call(manager, "post", "api-menu-publish")
        call(manager, "patch", "api-item-detail", {"name": "Renamed"}, pk=items[0]["id"])
        call(manager, "post", "api-menu-publish")
        first = call(manager, "get", "api-menu-versions").json()["results"][-1]["id"]
        call(manager, "post", "api-menu-version-rollback", pk=first)
        owner = api_client(roster[("ours", "owner")])
        actions = [e["action"] for e in owner.get(reverse("api-audit-events")).json()["results"]]
        assert actions == ["menu.rolled_back", "menu.published", "menu.published"]


class TestStorefrontRead:
    def test_unknown_hosts_are_404(self, manager):
        build_menu(manager, items=1)
        call(manager, "post", "api-menu-publish")
        assert storefront("nobody.localhost").status_code == 404
        assert storefront("ours.localhost:8000").status_code == 200, "the port does not matter"
        assert storefront("localhost").status_code == 404
        assert storefront("a.b.localhost").status_code == 404
        assert storefront("theirs.localhost").status_code == 404  # nothing published there

    def test_availability_windows_pick_the_menus_shown(self, manager, restaurants):
        from menus.storefront import storefront_menu

        call(manager, "post", "api-menus", {"name": "Breakfast", "availability": [
            {"weekdays": [0, 1, 2, 3, 4], "start": "07:00", "end": "11:00"}]})  # fmt: skip
        call(manager, "post", "api-menus", {"name": "Late", "availability": [
            {"weekdays": [4], "start": "22:00", "end": "02:00"}]})  # fmt: skip
        call(manager, "post", "api-menu-publish")
        ours = restaurants[0]

        def shown(when):
            result = storefront_menu(ours.pk, when)
            assert result is not None
            return [m["name"] for m in json.loads(result[1])["menus"]]

        assert shown(datetime(2026, 11, 30, 8, 0, tzinfo=UTC)) == ["Breakfast"]  # Monday
        assert shown(datetime(2026, 12, 4, 23, 0, tzinfo=UTC)) == ["Late"]  # Friday night
        assert shown(datetime(2026, 12, 5, 1, 0, tzinfo=UTC)) == ["Late"]  # after midnight
        assert shown(datetime(2026, 12, 5, 12, 0, tzinfo=UTC)) == []

    def test_at_most_two_queries_cold_and_none_warm(
        self, manager, restaurants, django_assert_max_num_queries, django_assert_num_queries
    ):
        from django.core.cache import cache

        from menus import storefront as module

        _menu, category, _group, _large, _items = build_menu(manager, items=1)
        for n in range(499):
            call(manager, "post", "api-items",
                 {"name": f"Extra {n}", "price": 100, "categories": [category["id"]]})  # fmt: skip
        call(manager, "post", "api-menu-publish")
        cache.clear()
        module._local.clear()
        with django_assert_max_num_queries(2):
            cold = storefront()
        assert len(cold.json()["items"]) == 500
        with django_assert_num_queries(0):
            warm = storefront()
        assert warm.content == cold.content


@pytest.mark.django_db(transaction=True)
def test_other_processes_see_a_change_within_a_second(manager, restaurants, monkeypatch):
    """A process not told of a publish notices it at its next revision check (≤ 1 s)."""
    from menus import storefront as module

    _, _, _, _, items = build_menu(manager, items=1)
    call(manager, "post", "api-menu-publish")
    clock = [1000.0]
    monkeypatch.setattr("menus.storefront.time.monotonic", lambda: clock[0])
    assert storefront().json()["version"] == 1
    call(manager, "patch", "api-item-detail", {"price": 4321}, pk=items[0]["id"])
    call(manager, "post", "api-menu-publish")
    module._checked[restaurants[0].pk] = clock[0]  # as if the publish ran in another process
    assert storefront().json()["version"] == 1
    clock[0] += module.REVISION_CHECK_SECONDS
    assert storefront().json()["version"] == 2


class TestOddInputs:
    """Inputs found by fuzzing: each is a clear 4xx (or harmless), never a 500."""

    def test_repeated_ids_in_links_count_once(self, manager):
        _, category, group, _, _ = build_menu(manager, items=0)
        body = {"name": "Z", "price": 5, "categories": [category["id"]] * 2,
                "modifier_groups": [group["id"]] * 2}  # fmt: skip
        response = call(manager, "post", "api-items", body)
        assert response.status_code == 201, response.content
        assert response.json()["categories"] == [category["id"]]
        assert response.json()["modifier_groups"] == [group["id"]]

    @pytest.mark.parametrize("name", ["\x00", "   "])
    def test_unstorable_or_blank_names_are_400(self, manager, name):
        assert call(manager, "post", "api-menus", {"name": name}).status_code == 400

    def test_times_must_match_exactly(self, manager):
        body = {
            "name": "A",
            "availability": [{"weekdays": [0], "start": "10:00\n", "end": "11:00"}],
        }
        assert call(manager, "post", "api-menus", body).status_code == 400

    def test_dashboard_survives_huge_exponents_and_nul(self, roster):
        from django.test import Client

        from tests.factories import token_for

        client = Client(raise_request_exception=False)
        client.cookies["__session"] = token_for(roster[("ours", "manager")])
        new_item = client.post("/dashboard/menus/items/new", {"name": "X", "price": "1E+1000000"})
        assert new_item.status_code == 400
        assert (
            client.post("/dashboard/menus", {"action": "add_menu", "name": "\x00"}).status_code
            == 302
        )


class TestResponsesMatchTheSchema:
    """What the API answers is what its OpenAPI document declares (a generated client
    relies on it)."""

    def test_an_item_read_and_changed_carries_its_categories(self, manager):
        _menu, category, _group, _large, items = build_menu(manager, items=1)
        item_id = items[0]["id"]
        read = call(manager, "get", "api-item-detail", pk=item_id)
        assert read.json()["categories"] == [category["id"]]
        assert_matches_schema(read, "GET", "/api/v1/items/{id}")
        changed = call(manager, "patch", "api-item-detail", {"name": "Soup"}, pk=item_id)
        assert changed.json()["categories"] == [category["id"]]
        assert_matches_schema(changed, "PATCH", "/api/v1/items/{id}")
        created = call(manager, "post", "api-items", {"name": "Tea", "price": 300})
        assert_matches_schema(created, "POST", "/api/v1/items")

    def test_a_changed_menu_answers_with_its_categories(self, manager):
        menu, category, *_ = build_menu(manager, items=1)
        response = call(manager, "patch", "api-menu-detail", {"name": "Dinner"}, pk=menu["id"])
        assert response.status_code == 200, response.content
        assert response.json()["name"] == "Dinner"
        assert [c["id"] for c in response.json()["categories"]] == [category["id"]]
        assert_matches_schema(response, "PATCH", "/api/v1/menus/{id}")
        assert_matches_schema(
            call(manager, "get", "api-menu-detail", pk=menu["id"]), "GET", "/api/v1/menus/{id}"
        )
