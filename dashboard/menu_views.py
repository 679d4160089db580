"""Dashboard pages for menus: the editor, an item's page, publishing and history, and the
sold-out board for the kitchen tablet."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from dashboard.base import DashboardView
from menus import services
from menus.image_api import check_upload_rate
from menus.image_services import item_set_image
from menus.images import image_url
from menus.models import Category, CategoryItem, Item, Menu, MenuVersion, Modifier, ModifierGroup
from nordkestrel.errors import DomainError, InvalidInput
from nordkestrel.money import to_major, to_minor
from staff.roles import Scope


def _get(model: Any, pk: Any) -> Any:
    try:
        return model.objects.get(pk=int(pk))
    except (model.DoesNotExist, TypeError, ValueError):
        raise Http404 from None


class PriceField(forms.CharField):
    def __init__(self, currency: str, **kwargs: Any) -> None:
        self.currency = currency
        super().__init__(max_length=12, **kwargs)

    def clean(self, value: Any) -> int:
        text = super().clean(value)
        try:
            return to_minor(text or "0", self.currency)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None


class ItemForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(max_length=1000, required=False, widget=forms.Textarea)
    dietary_tags = forms.CharField(
        max_length=200, required=False, help_text="Comma-separated, e.g. vegan, gluten-free"
    )

    def __init__(self, *args: Any, currency: str, categories: Any, groups: Any, **kw: Any):
        super().__init__(*args, **kw)
        self.fields["price"] = PriceField(currency, label=f"Price ({currency})")
        self.fields["categories"] = forms.MultipleChoiceField(
            choices=[(c.pk, f"{c.menu.name} / {c.name}") for c in categories], required=False,
            widget=forms.CheckboxSelectMultiple,
        )  # fmt: skip
        self.fields["modifier_groups"] = forms.MultipleChoiceField(
            choices=[(g.pk, g.name) for g in groups], required=False,
            widget=forms.CheckboxSelectMultiple,
        )  # fmt: skip

    def values(self) -> dict[str, Any]:
        data = self.cleaned_data
        tags = [t.strip().lower() for t in (data["dietary_tags"] or "").split(",") if t.strip()]
        return {
            "name": data["name"],
            "description": data["description"],
            "price": data["price"],
            "dietary_tags": tags,
            "categories": [int(pk) for pk in data["categories"]],
            "modifier_groups": [int(pk) for pk in data["modifier_groups"]],
        }


class MenuEditorView(DashboardView):
    """Menus, their categories and items, and the shared modifier groups."""

    template_name = "dashboard/menus.html"
    scopes = {"get": Scope.MENUS_READ, "post": Scope.MENUS_WRITE}

    def get(self, request: HttpRequest) -> HttpResponse:
        menus = Menu.objects.prefetch_related("categories__entries__item")
        groups = ModifierGroup.objects.prefetch_related("modifiers")
        currency = self.actor.restaurant.currency
        items = Item.objects.all()
        return self.page(
            request,
            menus=menus,
            groups=groups,
            unplaced=items.exclude(pk__in=CategoryItem.objects.values("item_id")),
            can_edit=self.actor.has(Scope.MENUS_WRITE),
            currency=currency,
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        action = request.POST.get("action", "")
        post = request.POST
        currency = self.actor.restaurant.currency
        try:
            if action == "add_menu":
                services.menu_save(
                    actor=self.actor, name=post.get("name", "").strip()[:80] or "Menu"
                )
            elif action == "add_category":
                services.category_save(
                    actor=self.actor, menu_id=post.get("menu"),
                    name=post.get("name", "").strip()[:80] or "Category",
                )  # fmt: skip
            elif action == "add_group":
                services.group_save(
                    actor=self.actor, name=post.get("name", "").strip()[:80] or "Options",
                    min_selections=_int(post.get("min"), 0),
                    max_selections=_int(post.get("max"), 1),
                    required=post.get("required") == "on",
                )  # fmt: skip
            elif action == "add_modifier":
                services.modifier_save(
                    actor=self.actor, group_id=post.get("group"),
                    name=post.get("name", "").strip()[:80] or "Option",
                    price_delta=_signed_minor(post.get("price", "0"), currency),
                )  # fmt: skip
            elif action in ("up", "down"):
                self._move(post.get("kind", ""), post.get("id"), action)
            elif action == "delete":
                kinds = {"menu": Menu, "category": Category, "group": ModifierGroup,
                         "modifier": Modifier, "item": Item}  # fmt: skip
                model = kinds.get(post.get("kind", ""))
                if model is None:
                    raise Http404
                services.delete(actor=self.actor, obj=_get(model, post.get("id")))
            else:
                raise Http404
        except DomainError as error:
            messages.error(request, error.detail)
        except ValueError as error:
            messages.error(request, str(error))
        return HttpResponseRedirect(reverse("dashboard:menus"))

    def _move(self, kind: str, pk: Any, direction: str) -> None:
        if kind == "category":
            category = _get(Category, pk)
            queryset = category.menu.categories.all()
            ids = list(queryset.values_list("pk", flat=True))
            target = category.pk
        elif kind == "entry":
            entry = _get(CategoryItem, pk)
            queryset = entry.category.entries.all()
            ids = list(queryset.values_list("pk", flat=True))
            target = entry.pk
        else:
            raise Http404
        index = ids.index(target)
        swap = index - 1 if direction == "up" else index + 1
        if 0 <= swap < len(ids):
            ids[index], ids[swap] = ids[swap], ids[index]
            services.reorder(actor=self.actor, queryset=queryset, ids=ids, attr="ids")


def _int(value: Any, default: int) -> int:
    try:
        return max(0, min(50, int(value)))
    except (TypeError, ValueError):
        return default


def _signed_minor(text: str, currency: str) -> int:
    text = (text or "0").strip()
    negative = text.startswith("-")
    minor = to_minor(text.lstrip("-+") or "0", currency)
    return -minor if negative else minor


class ItemEditView(DashboardView):
    template_name = "dashboard/item.html"
    scopes = {"get": Scope.MENUS_READ, "post": Scope.MENUS_WRITE}

    def _form(self, item: Item | None, data: Any = None) -> ItemForm:
        initial = None
        if item is not None and data is None:
            initial = {
                "name": item.name,
                "description": item.description,
                "price": to_major(item.price, self.actor.restaurant.currency),
                "dietary_tags": ", ".join(item.dietary_tags),
                "categories": [str(p.category_id) for p in item.placements.all()],
                "modifier_groups": [str(link.group_id) for link in item.group_links.all()],
            }
        return ItemForm(
            data,
            initial=initial,
            currency=self.actor.restaurant.currency,
            categories=Category.objects.select_related("menu"),
            groups=ModifierGroup.objects.all(),
        )

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        item = _get(Item, pk) if pk else None
        return self.page(
            request,
            item=item,
            form=self._form(item),
            can_edit=self.actor.has(Scope.MENUS_WRITE),
            image=image_url(item.image) if item and item.image else None,
        )

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        item = _get(Item, pk) if pk else None
        form = self._form(item, request.POST)
        if not form.is_valid():
            return self.page(request, status=400, item=item, form=form, can_edit=True)
        try:
            item = services.item_save(actor=self.actor, item=item, **form.values())
        except DomainError as error:
            form.add_error(error.attr if error.attr in form.fields else None, error.detail)
            return self.page(request, status=error.status, item=item, form=form, can_edit=True)
        messages.success(request, f"Saved {item.name}.")
        return HttpResponseRedirect(reverse("dashboard:item", args=[item.pk]))


class PublishView(DashboardView):
    """Preview what diners would see, publish it, and roll back to any earlier version."""

    template_name = "dashboard/publish.html"
    scopes = {"get": Scope.MENUS_READ, "post": Scope.MENUS_PUBLISH}

    def get(self, request: HttpRequest) -> HttpResponse:
        preview = services.preview(actor=self.actor)
        currency = self.actor.restaurant.currency
        document = preview["document"]
        return self.page(
            request,
            document=document,
            items=document["items"],
            changes=preview["changes"],
            versions=MenuVersion.objects.defer("document")[:50],
            can_publish=self.actor.has(Scope.MENUS_PUBLISH),
            currency=currency,
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            if request.POST.get("action") == "rollback":
                version = services.rollback(
                    actor=self.actor, version=_get(MenuVersion, request.POST.get("version"))
                )
                messages.success(request, f"Version {version.rolled_back_from} is live again.")
            else:
                version, _ = services.publish(actor=self.actor)
                messages.success(request, f"Published version {version.number}.")
        except DomainError as error:
            messages.error(request, error.detail)
        return HttpResponseRedirect(reverse("dashboard:publish"))


class SoldOutBoardView(DashboardView):
    """Big buttons for the kitchen tablet: tap to 86 an item or option, tap again to undo."""

    template_name = "dashboard/sold_out.html"
    scopes = {"get": Scope.MENUS_AVAILABILITY, "post": Scope.MENUS_AVAILABILITY}

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(
            request,
            items=Item.objects.order_by("name"),
            modifiers=Modifier.objects.select_related("group").order_by("group__name", "name"),
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        kind = request.POST.get("kind")
        model = {"item": Item, "modifier": Modifier}.get(kind or "")
        if model is None:
            raise Http404
        obj = _get(model, request.POST.get("id"))
        services.set_sold_out(actor=self.actor, obj=obj, sold_out=not obj.sold_out)
        state = "sold out" if obj.sold_out else "back on"
        messages.success(request, f"{obj.name} is {state}.")
        return HttpResponseRedirect(reverse("dashboard:sold-out"))


class ItemImageView(DashboardView):
    """Upload an item's photo from its page (same checks and limits as the API)."""

    scopes = {"post": Scope.MENUS_WRITE}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        item = _get(Item, pk)
        upload = request.FILES.get("image")
        try:
            check_upload_rate(request)
            if upload is None:
                raise InvalidInput("Choose an image file.", attr="image")
            item_set_image(actor=self.actor, item=item, upload=upload)
        except DomainError as error:
            messages.error(request, error.detail)
        else:
            messages.success(request, "Photo saved. Publish to show it to diners.")
        return HttpResponseRedirect(reverse("dashboard:item", args=[item.pk]))
