"""Strict input (nordkestrel/serializers.py): unknown fields are refused, not dropped."""

import pytest
from rest_framework import serializers

from nordkestrel.serializers import AsSent, StrictModelSerializer, StrictSerializer
from staff.models import StaffMember


class Row(StrictSerializer):
    weekday = serializers.IntegerField()


class Body(StrictSerializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=5)
    rows = Row(many=True, required=False)
    raw = AsSent()


def errors(data, **kwargs):
    serializer = Body(data=data, **kwargs)
    assert not serializer.is_valid()
    return serializer.errors


def test_an_unknown_field_is_named_before_any_field_is_checked():
    found = errors({"name": "far too long", "restaurant": 2, "active": True})
    assert list(found) == ["active", "restaurant"]  # every unknown field, by name
    assert found["active"][0] == "This field cannot be set."
    assert found["active"][0].code == "read_only"


def test_a_read_only_field_cannot_be_set():
    assert list(errors({"name": "Soup", "id": 7})) == ["id"]


def test_the_body_must_be_an_object():
    for data in ([1], "text", None, 3):
        assert errors(data) == {"non_field_errors": ["Send a JSON object."]}


def test_a_nested_strict_object_holds_only_its_fields():
    assert errors({"name": "Soup", "rows": [{"weekday": 1, "extra": 1}]}) == {
        "rows": {0: {"extra": ["This field cannot be set."]}}
    }


def test_known_fields_pass_and_as_sent_values_are_untouched():
    serializer = Body(data={"name": "Soup", "raw": {"any": ["shape", 1]}}, partial=True)
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == {"name": "Soup", "raw": {"any": ["shape", 1]}}
    empty = Body(data={"name": "Soup"})
    assert empty.is_valid()
    assert "raw" not in empty.validated_data


def test_a_model_serializer_refuses_what_it_cannot_write():
    class Member(StrictModelSerializer):
        class Meta:
            model = StaffMember
            fields = ["id", "name", "role"]
            read_only_fields = ["id", "role"]

    serializer = Member(data={"name": "A", "role": "owner"})
    assert not serializer.is_valid()
    assert list(serializer.errors) == ["role"]


@pytest.mark.django_db
def test_the_views_helper_takes_strict_serializers_only(roster):
    from rest_framework.test import APIRequestFactory

    from staff.api_base import TenantAPIView
    from staff.roles import Scope

    class Loose(serializers.Serializer):
        name = serializers.CharField()

    class View(TenantAPIView):
        scopes = {"post": Scope.MENUS_WRITE}

        def post(self, request):
            return self.parse(Loose)

    view = View()
    view.request = view.initialize_request(APIRequestFactory().post("/", {"name": "x"}))
    with pytest.raises(TypeError, match="must refuse unknown fields"):
        view.parse(Loose)
