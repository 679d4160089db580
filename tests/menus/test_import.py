"""Menu import: JSON and CSV into the draft, idempotent, dry-run, refusals, isolation."""

import copy
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEvent
from menus import import_parse
from menus.models import (
    Category,
    CategoryItem,
    Item,
    ItemModifierGroup,
    Menu,
    MenuVersion,
    Modifier,
    ModifierGroup,
)
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import api_client
from tests.menus.test_menus import build_menu, call, storefront

pytestmark = pytest.mark.django_db

KINDS = ("menus", "categories", "items", "modifier_groups", "modifiers", "placements")
NONE = dict.fromkeys(KINDS, 0)

MENU: dict[str, Any] = {
    "menus": [
        {
            "name": "Lunch",
            "description": "Weekdays",
            "availability": [{"weekdays": [4, 0, 1, 2, 3], "start": "11:00", "end": "15:00"}],
            "categories": [
                {
                    "name": "Mains",
                    "items": [
                        {"name": "Burger", "price": 1250, "description": "Beef",
                         "dietary_tags": ["halal"], "modifier_groups": ["Size"]},
                        {"name": "Salad", "price": 950, "dietary_tags": ["vegan", "gluten-free"]},
                    ],
                },
                {"name": "Drinks", "items": [{"name": "Lemonade", "price": 400}]},
            ],
        },
        {"name": "Dinner", "categories": [{"name": "Mains", "items": [
            {"name": "Burger", "price": 1250}]}]},
    ],
    "modifier_groups": [
        # required with a minimum of 0: stored with a minimum of 1, and still idempotent
        {"name": "Size", "min_selections": 0, "max_selections": 1, "required": True,
         "modifiers": [{"name": "Regular", "price_delta": 0},
                       {"name": "Large", "price_delta": 200}]},
    ],
}  # fmt: skip
MENU_CREATES = {"menus": 2, "categories": 3, "items": 3, "modifier_groups": 1, "modifiers": 2,
                "placements": 4}  # fmt: skip

CSV = (
    "menu,category,item,description,price,dietary_tags\n"
    'Lunch,Mains,Burger,"Beef, grilled",12.50,halal\n'
    "Lunch,Mains,Salad,,950,vegan|gluten-free\n"
    "Lunch,Drinks,Lemonade,,4.00,\n"
    'Dinner,Mains,Burger,"Beef, grilled",1250,halal\n'
)
CSV_CREATES = {**MENU_CREATES, "modifier_groups": 0, "modifiers": 0}


def upload(client, content, name="menu.json", dry_run=None):
    url = reverse("api-menu-import")
    if dry_run is not None:
        url += f"?dry_run={str(dry_run).lower()}"
    if isinstance(content, dict):
        content = json.dumps(content)
    if isinstance(content, str):
        content = content.encode()
    return client.post(url, data={"file": SimpleUploadedFile(name, content)})


def draft(slug="ours"):
    """How many rows of each kind the restaurant's draft holds."""
    with tenant_context(Restaurant.objects.get(slug=slug)):
        return {
            "menus": Menu.objects.count(),
            "categories": Category.objects.count(),
            "items": Item.objects.count(),
            "modifier_groups": ModifierGroup.objects.count(),
            "modifiers": Modifier.objects.count(),
            "placements": CategoryItem.objects.count(),
            "links": ItemModifierGroup.objects.count(),
        }


def imports_audited(slug="ours"):
    with tenant_context(Restaurant.objects.get(slug=slug)):
        return AuditEvent.objects.filter(action="menu.imported").count()


@pytest.fixture
def manager(roster):
    return api_client(roster[("ours", "manager")])


def ok(response):
    assert response.status_code == 200, response.content
    return response.json()


class TestImport:
    def test_json_creates_the_draft(self, manager, restaurants):
        report = ok(upload(manager, MENU))
        assert report == {"dry_run": False, "created": MENU_CREATES, "updated": NONE,
                          "unchanged": NONE}  # fmt: skip
        with tenant_context(restaurants[0]):
            lunch = Menu.objects.get(name="Lunch")
            assert lunch.description == "Weekdays"
            assert lunch.availability == [
                {"weekdays": [0, 1, 2, 3, 4], "start": "11:00", "end": "15:00"}
            ]
            assert [c.name for c in lunch.categories.all()] == ["Mains", "Drinks"]
            burger = Item.objects.get(name="Burger")
            assert (burger.price, burger.description, burger.dietary_tags) == (
                1250, "Beef", ["halal"],
            )  # fmt: skip
            assert sorted(p.category.menu.name for p in burger.placements.all()) == [
                "Dinner", "Lunch",
            ]  # fmt: skip
            size = ModifierGroup.objects.get(name="Size")
            assert [link.group_id for link in burger.group_links.all()] == [size.pk]
            assert (size.min_selections, size.max_selections, size.required) == (1, 1, True)
            assert [(m.name, m.price_delta) for m in size.modifiers.all()] == [
                ("Regular", 0), ("Large", 200),
            ]  # fmt: skip
            salad = Item.objects.get(name="Salad")
            assert salad.dietary_tags == ["gluten-free", "vegan"]

    def test_csv_creates_the_draft_with_decimal_and_minor_unit_prices(self, manager, restaurants):
        report = ok(upload(manager, CSV, name="menu.csv"))
        assert (report["created"], report["updated"]) == (CSV_CREATES, NONE)
        with tenant_context(restaurants[0]):
            prices = dict(Item.objects.values_list("name", "price"))
            assert prices == {"Burger": 1250, "Salad": 950, "Lemonade": 400}
            burger = Item.objects.get(name="Burger")
            assert (burger.description, burger.dietary_tags) == ("Beef, grilled", ["halal"])

    def test_csv_is_recognised_without_an_extension(self, manager):
        report = ok(upload(manager, CSV, name="export"))
        assert report["created"] == CSV_CREATES

    def test_json_is_recognised_by_its_opening_brace(self, manager):
        report = ok(upload(manager, MENU, name="export.txt"))
        assert report["created"] == MENU_CREATES

    def test_a_zero_decimal_currency_takes_whole_amounts(self, manager, restaurants):
        Restaurant.objects.filter(pk=restaurants[0].pk).update(currency="JPY")
        csv = "menu,category,item,price\nLunch,Mains,Ramen,1200\nLunch,Mains,Gyoza,450.00\n"
        ok(upload(manager, csv, name="menu.csv"))
        with tenant_context(restaurants[0]):
            assert dict(Item.objects.values_list("name", "price")) == {"Ramen": 1200, "Gyoza": 450}
        bad = upload(manager, "menu,category,item,price\nLunch,Mains,Tea,1.50\n", name="m.csv")
        assert (bad.status_code, bad.json()["attr"]) == (400, "row 2: price")

    @pytest.mark.parametrize(("content", "name"), [(MENU, "menu.json"), (CSV, "menu.csv")])
    def test_importing_twice_creates_nothing(self, manager, content, name):
        first = ok(upload(manager, content, name=name))
        before = draft()
        second = ok(upload(manager, content, name=name))
        assert second["created"] == NONE
        assert second["updated"] == NONE
        assert second["unchanged"] == first["created"]
        assert draft() == before

    def test_a_changed_price_is_an_update(self, manager, restaurants):
        ok(upload(manager, MENU))
        with tenant_context(restaurants[0]):
            stamp = Item.objects.get(name="Burger").updated_at
            lemonade = Item.objects.get(name="Lemonade").pk
        # A field the file leaves out is the draft's to keep.
        call(manager, "patch", "api-item-detail", {"description": "Fresh"}, pk=lemonade)
        changed = copy.deepcopy(MENU)
        for menu in changed["menus"]:
            for item in menu["categories"][0]["items"]:
                if item["name"] == "Burger":
                    item["price"] = 1390
        changed["modifier_groups"][0]["modifiers"][1]["price_delta"] = 250
        changed["menus"][0]["categories"][1]["items"].append({"name": "Tea", "price": 300})
        changed["modifier_groups"][0]["max_selections"] = 2
        changed["menus"][1]["description"] = "Evenings"
        report = ok(upload(manager, changed))
        assert report["updated"] == {**NONE, "menus": 1, "items": 1, "modifier_groups": 1,
                                     "modifiers": 1}  # fmt: skip
        assert report["created"] == {**NONE, "items": 1, "placements": 1}
        assert report["unchanged"] == {
            **MENU_CREATES, "menus": 1, "items": 2, "modifier_groups": 0, "modifiers": 1,
            "placements": 4,
        }  # fmt: skip
        with tenant_context(restaurants[0]):
            burger = Item.objects.get(name="Burger")
            assert (burger.price, burger.description) == (1390, "Beef")
            assert Item.objects.get(name="Lemonade").description == "Fresh"
            assert burger.updated_at > stamp
            assert Modifier.objects.get(name="Large").price_delta == 250
            assert ModifierGroup.objects.get(name="Size").max_selections == 2
            assert Menu.objects.get(name="Dinner").description == "Evenings"
            drinks = Category.objects.get(name="Drinks")
            assert [e.item.name for e in drinks.entries.all()] == ["Lemonade", "Tea"]
        assert ok(upload(manager, changed))["updated"] == NONE

    def test_existing_draft_objects_are_matched_and_nothing_is_deleted(self, manager, restaurants):
        _, category, group, _, _ = build_menu(manager, items=2)
        items = [
            {"name": "Dish 0", "price": 1000, "modifier_groups": ["Size"]},
            {"name": "Soup", "price": 700, "modifier_groups": ["Size"]},
        ]
        file: dict[str, Any] = {
            "menus": [{"name": "Lunch", "categories": [{"name": "Mains", "items": items}]}]
        }
        report = ok(upload(manager, file))
        assert report["created"] == {**NONE, "items": 1, "placements": 1}
        assert report["unchanged"] == {**NONE, "menus": 1, "categories": 1, "items": 1,
                                       "placements": 1}  # fmt: skip
        assert report["updated"] == NONE
        with tenant_context(restaurants[0]):
            assert Item.objects.filter(name="Dish 1").exists(), "items not in the file stay"
            mains = Category.objects.get(pk=category["id"])
            assert [e.item.name for e in mains.entries.all()] == ["Dish 0", "Dish 1", "Soup"]
            soup = Item.objects.get(name="Soup")
            assert [link.group_id for link in soup.group_links.all()] == [group["id"]]
            assert [p.category_id for p in soup.placements.all()] == [category["id"]]
        # An item moved into a second category keeps the first; a new group link is added.
        file["menus"].append({"name": "Late", "categories": [{"name": "Snacks", "items": [
            {"name": "Soup", "price": 700, "modifier_groups": ["Size", "Extras"]}]}]})  # fmt: skip
        for item in file["menus"][0]["categories"][0]["items"]:
            if item["name"] == "Soup":
                item["modifier_groups"] = ["Size", "Extras"]
        file["modifier_groups"] = [{"name": "Extras", "min_selections": 0, "max_selections": 3,
                                    "required": False, "modifiers": []}]  # fmt: skip
        report = ok(upload(manager, file))
        assert report["updated"] == {**NONE, "items": 1}
        with tenant_context(restaurants[0]):
            soup = Item.objects.get(name="Soup")
            assert soup.placements.count() == 2
            assert [link.group.name for link in soup.group_links.all()] == ["Size", "Extras"]
            assert Item.objects.get(name="Dish 0").group_links.count() == 1

    def test_an_imported_menu_can_be_published(self, manager):
        ok(upload(manager, MENU))
        published = call(manager, "post", "api-menu-publish")
        assert published.status_code == 201, published.content
        assert storefront().status_code == 200
        with tenant_context(Restaurant.objects.get(slug="ours")):
            document = MenuVersion.objects.get(number=published.json()["number"]).document
        assert sorted(item["name"] for item in document["items"].values()) == [
            "Burger", "Lemonade", "Salad",
        ]  # fmt: skip


class TestDryRun:
    def test_reports_the_same_numbers_and_writes_nothing(self, manager):
        dry = ok(upload(manager, MENU, dry_run=True))
        assert dry["dry_run"] is True
        assert dry["created"] == MENU_CREATES
        assert draft() == dict.fromkeys([*KINDS, "links"], 0)
        assert imports_audited() == 0
        real = ok(upload(manager, MENU, dry_run=False))
        assert {**real, "dry_run": True} == dry
        changed = copy.deepcopy(MENU)
        changed["menus"][0]["categories"][1]["items"][0]["price"] = 450
        before = draft()
        dry = ok(upload(manager, changed, dry_run=True))
        assert dry["updated"] == {**NONE, "items": 1}
        assert draft() == before
        with tenant_context(Restaurant.objects.get(slug="ours")):
            assert Item.objects.get(name="Lemonade").price == 400
        assert {**ok(upload(manager, changed)), "dry_run": True} == dry

    def test_a_dry_run_finds_the_same_problems(self, manager):
        file = copy.deepcopy(MENU)
        file["menus"][0]["categories"][0]["items"][0]["modifier_groups"] = ["Nope"]
        response = upload(manager, file, dry_run=True)
        assert response.status_code == 400
        assert response.json()["attr"] == "menus.0.categories.0.items.0.modifier_groups.0"

    def test_an_unclear_flag_is_refused(self, manager):
        response = upload(manager, MENU, dry_run="maybe")
        assert (response.status_code, response.json()["attr"]) == (400, "dry_run")
        assert draft()["menus"] == 0


def _rows(n):
    return "menu,category,item,price\n" + "".join(f"M,C,Item {i},100\n" for i in range(n))


def _entries(n):
    items = [{"name": f"Item {i}", "price": 100} for i in range(n)]
    return {"menus": [{"name": "M", "categories": [{"name": "C", "items": items}]}]}


BAD_FILES = [
    # (id, file name, content, attr, code)
    ("binary", "menu.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "file", "unsupported_format"),
    ("plain text", "notes.txt", "lunch is at noon", "file", "unsupported_format"),
    ("empty", "menu.json", " \n", "file", "empty"),
    ("broken json", "menu.json", '{"menus": [', "file", "invalid_json"),
    ("not utf-8", "menu.csv", "menu,category\nCafé,x\n".encode("latin-1"), "file",
     "unsupported_format"),
    ("json nul in a name", "menu.json", '{"menus": [{"name": "A\\u0000", "categories": []}]}',
     "menus.0.name", "invalid"),
    ("json root key", "menu.json", {"menus": [], "restaurant": 2}, "restaurant", "unknown_field"),
    ("json no menus", "menu.json", {"modifier_groups": []}, "menus", "required"),
    ("json negative price", "menu.json",
     {"menus": [{"name": "M", "categories": [{"name": "C", "items": [
         {"name": "A", "price": 100}, {"name": "B", "price": -1}]}]}]},
     "menus.0.categories.0.items.1.price", "invalid"),
    ("json fractional price", "menu.json",
     {"menus": [{"name": "M", "categories": [{"name": "C", "items": [
         {"name": "A", "price": 12.5}]}]}]},
     "menus.0.categories.0.items.0.price", "invalid"),
    ("json duplicate item", "menu.json",
     {"menus": [{"name": "M", "categories": [{"name": "C", "items": [
         {"name": "A", "price": 100}, {"name": "A", "price": 100}]}]}]},
     "menus.0.categories.0.items.1.name", "duplicate"),
    ("json conflicting item", "menu.json",
     {"menus": [{"name": "M", "categories": [
         {"name": "C", "items": [{"name": "A", "price": 100}]},
         {"name": "D", "items": [{"name": "A", "price": 200}]}]}]},
     "menus.0.categories.1.items.0.price", "conflict"),
    ("json bad tag", "menu.json",
     {"menus": [{"name": "M", "categories": [{"name": "C", "items": [
         {"name": "A", "price": 1, "dietary_tags": ["Not A Tag"]}]}]}]},
     "menus.0.categories.0.items.0.dietary_tags", "invalid"),
    ("json bad availability", "menu.json",
     {"menus": [{"name": "M", "availability": [{"weekdays": [9], "start": "10:00",
                                                 "end": "11:00"}], "categories": []}]},
     "menus.0.availability.0.weekdays", "invalid"),
    ("json min above max", "menu.json",
     {"menus": [], "modifier_groups": [{"name": "G", "min_selections": 3, "max_selections": 1,
                                         "required": False, "modifiers": []}]},
     "modifier_groups.0.min_selections", "invalid"),
    ("json unknown group", "menu.json",
     {"menus": [{"name": "M", "categories": [{"name": "C", "items": [
         {"name": "A", "price": 1}, {"name": "B", "price": 1, "modifier_groups": ["Nope"]}]}]}]},
     "menus.0.categories.0.items.1.modifier_groups.0", "unknown_group"),
    ("json too many entries", "menu.json", _entries(import_parse.MAX_ROWS), "file",
     "too_many_rows"),
    ("csv negative price", "menu.csv", "menu,category,item,price\nM,C,A,100\nM,C,B,-1\n",
     "row 3: price", "invalid"),
    ("csv text price", "menu.csv", "menu,category,item,price\nM,C,A,ten\n", "row 2: price",
     "invalid"),
    ("csv missing column", "menu.csv", "menu,category,item,description\nM,C,A,x\n",
     "row 1: price", "missing_column"),
    ("csv unknown column", "menu.csv", "menu,category,item,price,restaurant\nM,C,A,1,2\n",
     "row 1: restaurant", "invalid"),
    ("csv short row", "menu.csv", "menu,category,item,price\nM,C,A\n", "row 2", "invalid"),
    ("csv duplicate row", "menu.csv", "menu,category,item,price\nM,C,A,1\nM,C,A,1\n",
     "row 3: item", "duplicate"),
    ("csv bad tag", "menu.csv", "menu,category,item,price,dietary_tags\nM,C,A,1,vegan|Bad Tag\n",
     "row 2: dietary_tags", "invalid"),
    ("csv empty name", "menu.csv", "menu,category,item,price\nM, ,A,1\n", "row 2: category",
     "invalid"),
    ("csv too many rows", "menu.csv", _rows(import_parse.MAX_ROWS + 1), "file", "too_many_rows"),
    ("json nested 100,000 deep", "menu.json", b"[" * 100_000, "file", "too_deep"),
    ("json objects nested 100,000 deep", "menu.json",
     b'{"menus":' * 100_000 + b"[]" + b"}" * 100_000, "file", "too_deep"),
    ("json with a field nested 100,000 deep", "menu.json",
     b'{"menus": [], "modifier_groups": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "file",
     "too_deep"),
    ("json nested deep, sniffed without an extension", "menu",
     b'{"menus": ' + b"[" * 100_000, "file", "too_deep"),
    ("json with NaN", "menu.json", b'{"menus": NaN}', "file", "invalid_json"),
    ("too large", "menu.json", b"{" + b" " * import_parse.MAX_BYTES + b"}", "file", "too_large"),
    ("far too large", "menu.json", b"{" + b" " * (3 * import_parse.MAX_BYTES) + b"}", "file",
     "too_large"),
]  # fmt: skip


class TestRefusals:
    @pytest.mark.parametrize(
        ("name", "content", "attr", "code"),
        [pytest.param(*case[1:], id=case[0]) for case in BAD_FILES],
    )
    def test_a_bad_file_is_400_with_its_place_and_writes_nothing(
        self, manager, name, content, attr, code
    ):
        response = upload(manager, content, name=name)
        assert response.status_code == 400, response.content
        body = response.json()
        assert (body["attr"], body["code"]) == (attr, code), body
        assert body["type"] == "validation_error"
        assert draft() == dict.fromkeys([*KINDS, "links"], 0)
        assert imports_audited() == 0

    def test_a_late_problem_rolls_back_what_was_already_written(self, manager):
        file = copy.deepcopy(MENU)
        file["menus"][1]["categories"][0]["items"][0]["modifier_groups"] = ["Size", "Nope"]
        file["menus"][0]["categories"][0]["items"][0]["modifier_groups"] = ["Size", "Nope"]
        response = upload(manager, file)
        assert response.status_code == 400
        assert draft() == dict.fromkeys([*KINDS, "links"], 0)

    def test_a_json_body_is_415_and_a_missing_file_400(self, manager):
        url = reverse("api-menu-import")
        response = manager.post(url, data=json.dumps(MENU), content_type="application/json")
        assert response.status_code == 415
        response = manager.post(url, data={"other": "x"})
        assert (response.status_code, response.json()["attr"]) == (400, "other")
        response = manager.post(url, data={})
        assert (response.status_code, response.json()["attr"]) == (400, "file")

    @pytest.mark.parametrize("role", ["cashier", "kitchen"])
    def test_roles_without_menu_writes_are_403(self, roster, role):
        response = upload(api_client(roster[("ours", role)]), MENU, dry_run=True)
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        response = upload(api_client(roster[("ours", role)]), MENU)
        assert response.status_code == 403
        assert draft() == dict.fromkeys([*KINDS, "links"], 0)

    def test_rate_limited_per_ip(self, manager, frozen_ratelimit_clock):
        for _ in range(30):
            assert upload(manager, "x", name="a.txt").status_code == 400
        response = upload(manager, MENU)
        assert response.status_code == 429
        assert int(response["Retry-After"]) > 0
        assert draft()["menus"] == 0


class TestIsolationAndAudit:
    def test_another_restaurants_draft_is_untouched(self, manager, restaurants):
        theirs = restaurants[1]
        with tenant_context(theirs):
            lunch = Menu.objects.create(name="Lunch", description="Theirs")
            mains = Category.objects.create(menu=lunch, name="Mains")
            burger = Item.objects.create(name="Burger", price=999, description="Theirs")
            CategoryItem.objects.create(category=mains, item=burger)
            ModifierGroup.objects.create(name="Size", max_selections=3)
        before = draft("theirs")
        report = ok(upload(manager, MENU))
        assert report["created"] == MENU_CREATES, "their rows are not matches for ours"
        assert draft("theirs") == before
        with tenant_context(theirs):
            burger.refresh_from_db()
            assert (burger.price, burger.description) == (999, "Theirs")
            assert ModifierGroup.objects.get(name="Size").max_selections == 3
        assert draft()["items"] == 3

    def test_each_real_import_is_audited_once(self, manager, restaurants):
        ok(upload(manager, MENU, dry_run=True))
        assert imports_audited() == 0
        ok(upload(manager, MENU))
        ok(upload(manager, MENU))
        assert imports_audited() == 2
        assert imports_audited("theirs") == 0
        with tenant_context(restaurants[0]):
            event = AuditEvent.objects.filter(action="menu.imported").order_by("sequence")[0]
            assert event.actor_role == "manager"
            assert event.target_label == "menu.json"
            assert event.changes["created"]["after"] == MENU_CREATES


def test_lone_surrogates_in_json_are_a_400(roster):
    import io

    from django.urls import reverse

    from tests.factories import api_client

    client = api_client(roster[("ours", "manager")])
    document = b'{"menus":[{"name":"\\ud800","categories":[]}]}'
    upload = io.BytesIO(document)
    upload.name = "menu.json"
    response = client.post(reverse("api-menu-import"), {"file": upload})
    assert response.status_code == 400
