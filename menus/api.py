"""API: the menu draft, publishing and history, sold-out toggles, and the storefront read."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from menus import services
from menus.models import Category, CategoryItem, Item, Menu, MenuVersion, Modifier, ModifierGroup
from menus.schema import (
    AvailabilityField,
    MenuChangesSerializer,
    MenuDocumentField,
    PreviewSerializer,
    StorefrontMenuSerializer,
)
from menus.storefront import storefront_menu
from nordkestrel.openapi import ErrorSerializer
from nordkestrel.serializers import StrictModelSerializer, StrictSerializer
from staff.api_base import TenantAPIView
from staff.roles import Scope
from tenants.selectors import restaurant_id_for_host

# --- Serializers -----------------------------------------------------------------------------


class MenuSerializer(StrictModelSerializer):
    availability = AvailabilityField(required=False)

    class Meta:
        model = Menu
        fields = ["id", "name", "description", "position", "availability"]
        read_only_fields = ["id", "position"]


class CategorySerializer(StrictModelSerializer):
    items = serializers.SerializerMethodField()

    class Meta:
        model = Category
        fields = ["id", "menu", "name", "description", "position", "items"]
        read_only_fields = ["id", "menu", "position", "items"]

    def get_items(self, category: Category) -> list[int]:
        return [entry.item_id for entry in category.entries.all()]


class MenuDetailSerializer(MenuSerializer):
    categories = CategorySerializer(many=True, read_only=True)

    class Meta(MenuSerializer.Meta):
        fields = [*MenuSerializer.Meta.fields, "categories"]


class ItemSerializer(StrictModelSerializer):
    categories = serializers.ListField(
        child=serializers.IntegerField(), required=False, max_length=100
    )
    modifier_groups = serializers.ListField(
        child=serializers.IntegerField(), required=False, max_length=50
    )

    class Meta:
        model = Item
        fields = [
            "id", "name", "description", "price", "image", "dietary_tags", "sold_out",
            "categories", "modifier_groups",
        ]  # fmt: skip
        read_only_fields = ["id", "image", "sold_out"]
        extra_kwargs = {"price": {"min_value": 0, "max_value": 10_000_000}}

    def to_representation(self, item: Item) -> dict[str, Any]:
        data = super().to_representation(item)
        data["categories"] = [p.category_id for p in item.placements.all()]
        data["modifier_groups"] = [link.group_id for link in item.group_links.all()]
        return data


class ModifierSerializer(StrictModelSerializer):
    class Meta:
        model = Modifier
        fields = ["id", "group", "name", "price_delta", "sold_out", "position"]
        read_only_fields = ["id", "group", "sold_out", "position"]
        extra_kwargs = {"price_delta": {"min_value": -10_000_000, "max_value": 10_000_000}}


class ModifierGroupSerializer(StrictModelSerializer):
    modifiers = ModifierSerializer(many=True, read_only=True)

    class Meta:
        model = ModifierGroup
        fields = ["id", "name", "min_selections", "max_selections", "required", "modifiers"]
        read_only_fields = ["id", "modifiers"]
        extra_kwargs = {
            "min_selections": {"max_value": 50},
            "max_selections": {"max_value": 50},
        }


class VersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = MenuVersion
        fields = [
            "id", "number", "content_hash", "published_at", "published_by_label",
            "rolled_back_from",
        ]  # fmt: skip
        read_only_fields = fields


class VersionDetailSerializer(VersionSerializer):
    document = MenuDocumentField(read_only=True)

    class Meta(VersionSerializer.Meta):
        fields = [*VersionSerializer.Meta.fields, "document"]
        read_only_fields = fields


class PublishedVersionSerializer(VersionSerializer):
    changes = MenuChangesSerializer(read_only=True)

    class Meta(VersionSerializer.Meta):
        fields = [*VersionSerializer.Meta.fields, "changes"]
        read_only_fields = fields


class IdsSerializer(StrictSerializer):
    ids = serializers.ListField(child=serializers.IntegerField(), max_length=1000)


class SoldOutSerializer(StrictSerializer):
    sold_out = serializers.BooleanField()


# --- Draft -----------------------------------------------------------------------------------

READ_WRITE = {"get": Scope.MENUS_READ, "post": Scope.MENUS_WRITE}
DETAIL = {"get": Scope.MENUS_READ, "patch": Scope.MENUS_WRITE, "delete": Scope.MENUS_WRITE}


class MenuListView(TenantAPIView):
    model = Menu
    serializer_class = MenuSerializer
    scopes = READ_WRITE

    @extend_schema(operation_id="menus_list", responses=MenuSerializer(many=True))
    def get(self, request: Request) -> Response:
        return self.paginated(self.get_queryset(), MenuSerializer)

    @extend_schema(request=MenuSerializer, responses={201: MenuSerializer})
    def post(self, request: Request) -> Response:
        menu = services.menu_save(actor=self.actor, **self.parse(MenuSerializer))
        return Response(MenuSerializer(menu).data, status=status.HTTP_201_CREATED)


class MenuDetailView(TenantAPIView):
    model = Menu
    serializer_class = MenuDetailSerializer
    scopes = DETAIL

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.prefetch_related("categories__entries")

    def get(self, request: Request, pk: int) -> Response:
        return Response(MenuDetailSerializer(self.get_object()).data)

    @extend_schema(request=MenuSerializer, responses=MenuDetailSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        fields = self.parse(MenuSerializer, partial=True)
        services.menu_save(actor=self.actor, menu=self.get_object(), **fields)
        # Answered as GET answers it: the menu with its categories, read after the change.
        return Response(MenuDetailSerializer(self.get_object()).data)

    def delete(self, request: Request, pk: int) -> Response:
        services.delete(actor=self.actor, obj=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class MenuCategoriesView(TenantAPIView):
    """Add a category to a menu."""

    model = Menu
    serializer_class = CategorySerializer
    scopes = {"post": Scope.MENUS_WRITE}

    @extend_schema(request=CategorySerializer, responses={201: CategorySerializer})
    def post(self, request: Request, pk: int) -> Response:
        menu = self.get_object()
        category = services.category_save(
            actor=self.actor, menu_id=menu.pk, **self.parse(CategorySerializer)
        )
        return Response(CategorySerializer(category).data, status=status.HTTP_201_CREATED)


class MenuReorderView(TenantAPIView):
    """Order a menu's categories: {"ids": [category ids in order]}."""

    model = Menu
    serializer_class = IdsSerializer
    scopes = {"post": Scope.MENUS_WRITE}

    def post(self, request: Request, pk: int) -> Response:
        menu = self.get_object()
        ids = self.parse(IdsSerializer)["ids"]
        services.reorder(actor=self.actor, queryset=menu.categories.all(), ids=ids, attr="ids")
        return Response({"ids": ids})


class CategoryDetailView(TenantAPIView):
    model = Category
    serializer_class = CategorySerializer
    scopes = {"patch": Scope.MENUS_WRITE, "delete": Scope.MENUS_WRITE}

    def patch(self, request: Request, pk: int) -> Response:
        category = self.get_object()
        fields = self.parse(CategorySerializer, partial=True)
        category = services.category_save(actor=self.actor, category=category, **fields)
        return Response(CategorySerializer(category).data)

    def delete(self, request: Request, pk: int) -> Response:
        services.delete(actor=self.actor, obj=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class CategoryReorderView(TenantAPIView):
    """Order a category's items: {"ids": [item ids in order]}."""

    model = Category
    serializer_class = IdsSerializer
    scopes = {"post": Scope.MENUS_WRITE}

    def post(self, request: Request, pk: int) -> Response:
        category = self.get_object()
        item_ids = self.parse(IdsSerializer)["ids"]
        entries = dict(CategoryItem.objects.filter(category=category).values_list("item_id", "pk"))
        ids = [entries.get(item_id, -1) for item_id in item_ids]
        services.reorder(actor=self.actor, queryset=category.entries.all(), ids=ids, attr="ids")
        return Response({"ids": item_ids})


class ItemListView(TenantAPIView):
    model = Item
    serializer_class = ItemSerializer
    scopes = READ_WRITE

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.prefetch_related("placements", "group_links")

    @extend_schema(operation_id="items_list", responses=ItemSerializer(many=True))
    def get(self, request: Request) -> Response:
        return self.paginated(self.get_queryset(), ItemSerializer)

    @extend_schema(request=ItemSerializer, responses={201: ItemSerializer})
    def post(self, request: Request) -> Response:
        item = services.item_save(actor=self.actor, **self.parse(ItemSerializer))
        return Response(ItemSerializer(item).data, status=status.HTTP_201_CREATED)


class ItemDetailView(TenantAPIView):
    model = Item
    serializer_class = ItemSerializer
    scopes = DETAIL

    def get(self, request: Request, pk: int) -> Response:
        return Response(ItemSerializer(self.get_object()).data)

    def patch(self, request: Request, pk: int) -> Response:
        item = self.get_object()
        fields = self.parse(ItemSerializer, partial=True)
        return Response(
            ItemSerializer(services.item_save(actor=self.actor, item=item, **fields)).data
        )

    def delete(self, request: Request, pk: int) -> Response:
        services.delete(actor=self.actor, obj=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ItemDuplicateView(TenantAPIView):
    model = Item
    serializer_class = ItemSerializer
    scopes = {"post": Scope.MENUS_WRITE}

    @extend_schema(request=None, responses={201: ItemSerializer})
    def post(self, request: Request, pk: int) -> Response:
        copy = services.item_duplicate(actor=self.actor, item=self.get_object())
        return Response(ItemSerializer(copy).data, status=status.HTTP_201_CREATED)


class SoldOutView(TenantAPIView):
    serializer_class = SoldOutSerializer
    scopes = {"post": Scope.MENUS_AVAILABILITY}
    abstract = True

    def post(self, request: Request, pk: int) -> Response:
        obj = self.get_object()
        sold_out = self.parse(SoldOutSerializer)["sold_out"]
        services.set_sold_out(actor=self.actor, obj=obj, sold_out=sold_out)
        return Response({"id": obj.pk, "sold_out": sold_out})


class ItemSoldOutView(SoldOutView):
    model = Item
    abstract = False


class ModifierSoldOutView(SoldOutView):
    model = Modifier
    abstract = False


class GroupListView(TenantAPIView):
    model = ModifierGroup
    serializer_class = ModifierGroupSerializer
    scopes = READ_WRITE

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.prefetch_related("modifiers")

    @extend_schema(
        operation_id="modifier_groups_list", responses=ModifierGroupSerializer(many=True)
    )
    def get(self, request: Request) -> Response:
        return self.paginated(self.get_queryset(), ModifierGroupSerializer)

    @extend_schema(request=ModifierGroupSerializer, responses={201: ModifierGroupSerializer})
    def post(self, request: Request) -> Response:
        group = services.group_save(actor=self.actor, **self.parse(ModifierGroupSerializer))
        return Response(ModifierGroupSerializer(group).data, status=status.HTTP_201_CREATED)


class GroupDetailView(TenantAPIView):
    model = ModifierGroup
    serializer_class = ModifierGroupSerializer
    scopes = DETAIL

    def get(self, request: Request, pk: int) -> Response:
        return Response(ModifierGroupSerializer(self.get_object()).data)

    def patch(self, request: Request, pk: int) -> Response:
        group = self.get_object()
        fields = self.parse(ModifierGroupSerializer, partial=True)
        group = services.group_save(actor=self.actor, group=group, **fields)
        return Response(ModifierGroupSerializer(group).data)

    def delete(self, request: Request, pk: int) -> Response:
        services.delete(actor=self.actor, obj=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class GroupModifiersView(TenantAPIView):
    model = ModifierGroup
    serializer_class = ModifierSerializer
    scopes = {"post": Scope.MENUS_WRITE}

    @extend_schema(request=ModifierSerializer, responses={201: ModifierSerializer})
    def post(self, request: Request, pk: int) -> Response:
        group = self.get_object()
        modifier = services.modifier_save(
            actor=self.actor, group_id=group.pk, **self.parse(ModifierSerializer)
        )
        return Response(ModifierSerializer(modifier).data, status=status.HTTP_201_CREATED)


class ModifierDetailView(TenantAPIView):
    model = Modifier
    serializer_class = ModifierSerializer
    scopes = {"patch": Scope.MENUS_WRITE, "delete": Scope.MENUS_WRITE}

    def patch(self, request: Request, pk: int) -> Response:
        modifier = self.get_object()
        fields = self.parse(ModifierSerializer, partial=True)
        modifier = services.modifier_save(actor=self.actor, modifier=modifier, **fields)
        return Response(ModifierSerializer(modifier).data)

    def delete(self, request: Request, pk: int) -> Response:
        services.delete(actor=self.actor, obj=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Publishing --------------------------------------------------------------------------------


class PreviewView(TenantAPIView):
    """The draft exactly as diners would see it, and what publishing it would change."""

    scopes = {"get": Scope.MENUS_READ}

    @extend_schema(responses=PreviewSerializer)
    def get(self, request: Request) -> Response:
        return Response(services.preview(actor=self.actor))


class PublishView(TenantAPIView):
    scopes = {"post": Scope.MENUS_PUBLISH}

    @extend_schema(request=None, responses={201: PublishedVersionSerializer})
    def post(self, request: Request) -> Response:
        version, changes = services.publish(actor=self.actor)
        return Response(
            {**VersionSerializer(version).data, "changes": changes}, status=status.HTTP_201_CREATED
        )


class VersionListView(TenantAPIView):
    model = MenuVersion
    serializer_class = VersionSerializer
    scopes = {"get": Scope.MENUS_READ}

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.defer("document")

    @extend_schema(operation_id="menu_versions_list", responses=VersionSerializer(many=True))
    def get(self, request: Request) -> Response:
        return self.paginated(self.get_queryset(), VersionSerializer)


class VersionDetailView(TenantAPIView):
    model = MenuVersion
    serializer_class = VersionDetailSerializer
    scopes = {"get": Scope.MENUS_READ}

    def get(self, request: Request, pk: int) -> Response:
        return Response(VersionDetailSerializer(self.get_object()).data)


class VersionRollbackView(TenantAPIView):
    model = MenuVersion
    serializer_class = VersionSerializer
    scopes = {"post": Scope.MENUS_PUBLISH}

    @extend_schema(request=None, responses={201: VersionSerializer})
    def post(self, request: Request, pk: int) -> Response:
        version = services.rollback(actor=self.actor, version=self.get_object())
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)


# --- The storefront's read -----------------------------------------------------------------


STOREFRONT_CACHE_CONTROL = "public, max-age=30, stale-while-revalidate=60"


class StorefrontMenuView(APIView):
    """The published menus available now, for the storefront of the requesting host.

    Public: the host picks the restaurant. No join work per request: one cached lookup for
    the host, then the precomputed document from this process's memory.
    """

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """GET skips DRF's request wrapping, content negotiation and checks.

        The view is public (no authentication, permission or throttle) and answers
        ready-made bytes, so that machinery would cost more than the answer. Other methods
        still go through DRF (405, OPTIONS).
        """
        if request.method == "GET":
            self.args, self.kwargs, self.request = args, kwargs, request
            return self.get(request)
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(
        operation_id="storefront_menu",
        responses={200: StorefrontMenuSerializer, 304: None, 404: ErrorSerializer},
    )
    def get(self, request: Request) -> HttpResponse:
        restaurant_id = restaurant_id_for_host(request.get_host())
        if restaurant_id is None:
            raise Http404
        result = storefront_menu(restaurant_id)
        if result is None:
            raise Http404
        etag, body = result
        if etag in request.headers.get("If-None-Match", ""):
            response = HttpResponse(status=304)
        else:
            response = HttpResponse(body, content_type="application/json")
        response["ETag"] = etag
        response["Cache-Control"] = STOREFRONT_CACHE_CONTROL
        response["Vary"] = "Host"
        return response
