"""Strict input: a body may carry only the fields a serializer can write.

Mass assignment is refused rather than ignored (SECURITY.md 2.3): an unknown key (``id``,
``restaurant``, ``status``, a typo) is a 400 whose ``attr`` names it, before any field is
validated. An input serializer inherits :class:`StrictSerializer` or
:class:`StrictModelSerializer`; API views read a body with ``self.parse(SerializerClass)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty


def reject_unknown_fields(data: Any, allowed: Iterable[str]) -> None:
    """400 unless ``data`` is an object whose keys are all in ``allowed``."""
    if not isinstance(data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise serializers.ValidationError(
            {unknown[0]: [serializers.ErrorDetail("This field cannot be set.", "read_only")]}
        )


# A serializer mixin: unknown fields are refused, not dropped. The body itself must be an
# object; a nested object validated by a strict serializer must also hold only its fields.
# (The strict classes have no docstrings: the API schema would show them as the description
# of every serializer that has none of its own.)
class StrictInput:
    def run_validation(self, data: Any = empty) -> Any:
        if getattr(self, "parent", None) is None and not isinstance(data, dict):
            reject_unknown_fields(data, ())  # the body is not an object
        return super().run_validation(data)  # type: ignore[misc]

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            fields: dict[str, serializers.Field] = self.fields  # type: ignore[attr-defined]
            reject_unknown_fields(data, (name for name, f in fields.items() if not f.read_only))
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictSerializer(StrictInput, serializers.Serializer):
    pass


class StrictModelSerializer(StrictInput, serializers.ModelSerializer):
    pass


# A body that must be empty (or ``{}``): the action takes no input.
class NoInput(StrictSerializer):
    pass


class AsSent(serializers.JSONField):
    """A field passed to the service as sent (the service checks it and names it in its
    error); listed so that the body may carry it."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)
