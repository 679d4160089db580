"""The published menu document (``menus.document.build_document``) as the OpenAPI document
declares it: in the storefront's read, a version's detail and the draft's preview. These
serializers describe the shape only; the document is built and stored as plain JSON."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

HH_MM_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class AvailabilityWindowSerializer(serializers.Serializer):
    """When a menu is offered, on the restaurant's clock; ``end`` before ``start`` runs past
    midnight."""

    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        min_length=1,
        help_text="0 is Monday, 6 Sunday.",
    )
    start = serializers.RegexField(HH_MM_PATTERN, help_text="HH:MM")
    end = serializers.RegexField(HH_MM_PATTERN, help_text="HH:MM")


@extend_schema_field(AvailabilityWindowSerializer(many=True))
class AvailabilityField(serializers.JSONField):
    """A menu's availability windows (validated by the service); empty: always available."""


class DocumentCategorySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    items = serializers.ListField(child=serializers.IntegerField(), help_text="Item ids, in order.")


class DocumentMenuSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    availability = AvailabilityWindowSerializer(many=True)
    categories = DocumentCategorySerializer(many=True)


class DocumentItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    price = serializers.IntegerField(help_text="Minor units.")
    image = serializers.CharField(allow_blank=True, help_text="The stored image's key.")
    image_url = serializers.CharField(allow_null=True)
    dietary_tags = serializers.ListField(child=serializers.CharField())
    modifier_groups = serializers.ListField(child=serializers.IntegerField())


class DocumentModifierSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    price_delta = serializers.IntegerField()


class DocumentModifierGroupSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    min = serializers.IntegerField()
    max = serializers.IntegerField()
    required = serializers.BooleanField()  # type: ignore[assignment]  # a body key
    modifiers = DocumentModifierSerializer(many=True)


class DocumentRestaurantSerializer(serializers.Serializer):
    name = serializers.CharField()
    currency = serializers.CharField()
    timezone = serializers.CharField()


class MenuDocumentSerializer(serializers.Serializer):
    restaurant = DocumentRestaurantSerializer()
    menus = DocumentMenuSerializer(many=True)
    items = serializers.DictField(child=DocumentItemSerializer(), help_text="By item id.")
    modifier_groups = serializers.DictField(
        child=DocumentModifierGroupSerializer(), help_text="By group id."
    )


@extend_schema_field(MenuDocumentSerializer)
class MenuDocumentField(serializers.JSONField):
    """A stored document, answered as it was stored."""


class SoldOutNowSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.IntegerField())
    modifiers = serializers.ListField(child=serializers.IntegerField())


class StorefrontMenuSerializer(MenuDocumentSerializer):
    """The live version's menus that are available now, and what is sold out now."""

    version = serializers.IntegerField()
    sold_out = SoldOutNowSerializer()


class ItemChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    fields = serializers.ListField(child=serializers.CharField())  # type: ignore[assignment]


class ItemNamedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class MenuChangesSerializer(serializers.Serializer):
    added = ItemNamedSerializer(many=True)
    removed = ItemNamedSerializer(many=True)
    changed = ItemChangeSerializer(many=True)
    menus_before = serializers.IntegerField()
    menus_after = serializers.IntegerField()


class PreviewSerializer(serializers.Serializer):
    document = MenuDocumentSerializer()
    changes = MenuChangesSerializer()
