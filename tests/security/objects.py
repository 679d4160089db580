"""One object of each addressable kind, made in a given restaurant, for the matrices."""

from __future__ import annotations

from django.forms.models import model_to_dict
from django.utils import timezone

from menus.models import Category, CategoryItem, Item, Menu, MenuVersion, Modifier, ModifierGroup
from staff.roles import Role
from tenants.context import tenant_bypass, tenant_context
from tests.factories import make_staff


def make_object(kind, restaurant):
    if kind == "staff":
        return make_staff(restaurant, Role.KITCHEN)
    with tenant_context(restaurant):
        if kind == "menu":
            return Menu.objects.create(name=f"{restaurant.slug} secret menu")
        if kind == "category":
            menu = Menu.objects.create(name=f"{restaurant.slug} menu")
            return Category.objects.create(menu=menu, name=f"{restaurant.slug} secret category")
        if kind == "item":
            menu = Menu.objects.create(name=f"{restaurant.slug} menu")
            category = Category.objects.create(menu=menu, name="c")
            item = Item.objects.create(name=f"{restaurant.slug} secret item", price=100)
            CategoryItem.objects.create(category=category, item=item)
            return item
        if kind == "group":
            return ModifierGroup.objects.create(name=f"{restaurant.slug} secret group")
        if kind == "modifier":
            group = ModifierGroup.objects.create(name="g")
            return Modifier.objects.create(group=group, name=f"{restaurant.slug} secret modifier")
        if kind == "version":
            return MenuVersion.objects.create(
                number=1, document={"menus": [], "items": {}, "modifier_groups": {}},
                content_hash="0" * 64, published_at=timezone.now(),
            )  # fmt: skip
    raise AssertionError(kind)


def secret_of(obj):
    """A string that must never appear in another restaurant's answers."""
    return getattr(obj, "email", None) or getattr(obj, "name", None) or obj.content_hash


def snapshot(obj):
    with tenant_bypass():
        fresh = type(obj).unscoped.filter(pk=obj.pk).first()
        return model_to_dict(fresh) if fresh else None
