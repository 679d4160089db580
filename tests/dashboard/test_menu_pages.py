import pytest
from django.test import Client

from menus.models import Category, Item, Menu, MenuVersion, ModifierGroup
from nordkestrel.money import to_major, to_minor
from tenants.context import tenant_context
from tests.factories import token_for

pytestmark = pytest.mark.django_db


def signed_in(member):
    client = Client(raise_request_exception=False)
    client.cookies["__session"] = token_for(member)
    return client


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [("12.50", "EUR", 1250), ("12,5", "EUR", 1250), ("0", "EUR", 0), ("1200", "JPY", 1200)],
)
def test_prices_are_read_in_major_units(text, currency, minor):
    assert to_minor(text, currency) == minor
    assert to_minor(to_major(minor, currency), currency) == minor


@pytest.mark.parametrize("text", ["-1", "1.005", "abc", "NaN", "1e9"])
def test_bad_prices_are_refused(text):
    with pytest.raises(ValueError, match=r"."):
        to_minor(text, "EUR")


def test_manager_builds_publishes_and_rolls_back_from_the_pages(roster, restaurants):
    ours = restaurants[0]
    client = signed_in(roster[("ours", "manager")])
    client.post("/dashboard/menus", {"action": "add_menu", "name": "Dinner"})
    with tenant_context(ours):
        menu = Menu.objects.get()
    client.post("/dashboard/menus", {"action": "add_category", "menu": menu.pk, "name": "Mains"})
    client.post("/dashboard/menus", {"action": "add_group", "name": "Size", "min": "1",
                                     "max": "1", "required": "on"})  # fmt: skip
    with tenant_context(ours):
        category = Category.objects.get()
        group = ModifierGroup.objects.get()
    client.post("/dashboard/menus", {"action": "add_modifier", "group": group.pk,
                                     "name": "Large", "price": "1.50"})  # fmt: skip
    bad = client.post("/dashboard/menus/items/new", {"name": "Steak", "price": "twelve"})
    assert bad.status_code == 400
    created = client.post(
        "/dashboard/menus/items/new",
        {"name": "Steak", "price": "24.90", "categories": [category.pk],
         "modifier_groups": [group.pk], "dietary_tags": "gluten-free"},
    )  # fmt: skip
    assert created.status_code == 302
    with tenant_context(ours):
        steak = Item.objects.get()
    assert (steak.price, steak.dietary_tags) == (2490, ["gluten-free"])
    page = client.get("/dashboard/menus").content.decode()
    assert "Steak" in page
    assert "24.90" in page
    preview = client.get("/dashboard/menus/publish").content.decode()
    assert "New: Steak" in preview
    assert client.post("/dashboard/menus/publish", {"action": "publish"}).status_code == 302
    client.post(f"/dashboard/menus/items/{steak.pk}", {"name": "Steak", "price": "26.00",
                                                        "categories": [category.pk]})  # fmt: skip
    assert (
        "Changed: Steak (price, dietary_tags, modifier_groups)"
        in client.get("/dashboard/menus/publish").content.decode()
    )
    client.post("/dashboard/menus/publish", {"action": "publish"})
    with tenant_context(ours):
        first = MenuVersion.objects.get(number=1)
    client.post("/dashboard/menus/publish", {"action": "rollback", "version": first.pk})
    with tenant_context(ours):
        live = MenuVersion.objects.order_by("-number").first()
    assert live is not None
    assert (live.number, live.rolled_back_from) == (3, 1)


def test_kitchen_86s_from_the_board_but_cannot_edit(roster, restaurants):
    ours = restaurants[0]
    with tenant_context(ours):
        item = Item.objects.create(name="Soup", price=500)
    kitchen = signed_in(roster[("ours", "kitchen")])
    board = kitchen.get("/dashboard/sold-out").content.decode()
    assert "Soup" in board
    assert kitchen.post("/dashboard/sold-out", {"kind": "item", "id": item.pk}).status_code == 302
    with tenant_context(ours):
        assert Item.objects.get().sold_out
    kitchen.post("/dashboard/sold-out", {"kind": "item", "id": item.pk})
    with tenant_context(ours):
        assert not Item.objects.get().sold_out
    assert kitchen.post("/dashboard/menus", {"action": "add_menu", "name": "X"}).status_code == 403
    editor = kitchen.get(f"/dashboard/menus/items/{item.pk}").content.decode()
    assert "Save item" not in editor


def test_pages_never_reach_another_restaurants_rows(roster, restaurants):
    theirs = restaurants[1]
    with tenant_context(theirs):
        foreign = Item.objects.create(name="Their secret", price=100)
    client = signed_in(roster[("ours", "owner")])
    assert client.get(f"/dashboard/menus/items/{foreign.pk}").status_code == 404
    assert client.post("/dashboard/sold-out", {"kind": "item", "id": foreign.pk}).status_code == 404
    delete = {"action": "delete", "kind": "item", "id": foreign.pk}
    assert client.post("/dashboard/menus", delete).status_code == 404
    with tenant_context(theirs):
        assert Item.objects.filter(pk=foreign.pk, sold_out=False).exists()


def test_manager_uploads_a_photo_from_the_item_page(roster, restaurants, settings, tmp_path):
    import io

    from PIL import Image

    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path)}}}  # fmt: skip
    ours = restaurants[0]
    with tenant_context(ours):
        item = Item.objects.create(name="Soup", price=500)
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "orange").save(buffer, "PNG")
    buffer.seek(0)
    buffer.name = "soup.png"
    client = signed_in(roster[("ours", "manager")])
    response = client.post(f"/dashboard/menus/items/{item.pk}/image", {"image": buffer})
    assert response.status_code == 302
    with tenant_context(ours):
        key = Item.objects.get().image
    assert key.startswith(f"restaurants/{ours.pk}/items/")
    assert "<img" in client.get(f"/dashboard/menus/items/{item.pk}").content.decode()
    junk = io.BytesIO(b"not an image")
    junk.name = "fake.png"
    client.post(f"/dashboard/menus/items/{item.pk}/image", {"image": junk})
    with tenant_context(ours):
        assert Item.objects.get().image == key, "a rejected upload changes nothing"
