"""Strict input: a body may carry only the fields a serializer can write.

Mass assignment is refused rather than ignored (SECURITY.md 2.3): an unknown key (``id``,
``restaurant``, ``status``, a typo) is a 400 whose ``attr`` names it, before any field is
validated. An input serializer inherits :class:`StrictSerializer` or
:class:`StrictModelSerializer`; API views read a body with ``self.parse(SerializerClass)``
(:class:`StrictParsing`), and the storefront's pages with :func:`validated`.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty


def _not_an_object() -> serializers.ValidationError:
    return serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})


# A serializer mixin: unknown fields are refused, not dropped. The body itself must be an
# object; a nested object validated by a strict serializer must also hold only its fields.
# A serializer that parses its body itself overrides ``to_internal_value`` and calls
# ``refuse_unknown_fields`` first.
# (The strict classes have no docstrings: the API schema would show them as the description
# of every serializer that has none of its own.)
class StrictInput:
    def run_validation(self, data: Any = empty) -> Any:
        if getattr(self, "parent", None) is None and not isinstance(data, dict):
            raise _not_an_object()
        return super().run_validation(data)  # type: ignore[misc]

    def refuse_unknown_fields(self, data: Any) -> None:
        """400 unless ``data`` is an object holding only fields this serializer can write."""
        if not isinstance(data, dict):
            raise _not_an_object()
        unknown = sorted(set(data) - self._strict_writable_names())
        if unknown:
            refused = serializers.ErrorDetail("This field cannot be set.", "read_only")
            raise serializers.ValidationError({name: [refused] for name in unknown})

    def _strict_writable_names(self) -> frozenset[str]:
        """The names a body may carry. A plain serializer's fields are copies of its declared
        fields, so their names are worked out once per class (building ``self.fields`` copies
        every field on every request); a model serializer, or one that builds its own fields,
        is asked each time."""
        cls = type(self)
        if isinstance(self, serializers.ModelSerializer) or (
            cls.get_fields is not serializers.Serializer.get_fields  # type: ignore[attr-defined]
        ):
            fields: dict[str, serializers.Field] = self.fields  # type: ignore[attr-defined]
            return frozenset(name for name, f in fields.items() if not f.read_only)
        writable: frozenset[str] | None = cls.__dict__.get("_strict_writable")
        if writable is None:
            declared: dict[str, serializers.Field] = cls._declared_fields  # type: ignore[attr-defined]
            writable = frozenset(name for name, f in declared.items() if not f.read_only)
            cls._strict_writable = writable  # type: ignore[attr-defined]
        return writable

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            self.refuse_unknown_fields(data)
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictSerializer(StrictInput, serializers.Serializer):
    pass


class StrictModelSerializer(StrictInput, serializers.ModelSerializer):
    pass


# A body that must be empty (or ``{}``): the action takes no input.
class NoInput(StrictSerializer):
    pass


def _require_strict(serializer_class: type[serializers.Serializer]) -> None:
    if not issubclass(serializer_class, StrictInput):
        raise TypeError(f"{serializer_class.__name__} must refuse unknown fields: StrictInput.")


def validated(
    serializer_class: type[serializers.Serializer],
    data: Any,
    *,
    instance: Any = None,
    partial: bool = False,
    **context: Any,
) -> dict[str, Any]:
    """``data`` validated by a strict serializer: an unknown field (``id``, ``restaurant``, a
    typo) is a 400 naming it; ``context`` goes to the serializer."""
    _require_strict(serializer_class)
    serializer = serializer_class(instance, data=data, partial=partial, context=context)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# The one way an API view reads a body (the base API views of both front doors inherit it).
class StrictParsing:
    def parse(
        self,
        serializer_class: type[serializers.Serializer],
        *,
        instance: Any = None,
        partial: bool = False,
        **context: Any,
    ) -> dict[str, Any]:
        """The request's body, validated by a strict serializer (:func:`validated`)."""
        _require_strict(serializer_class)  # before the body is read
        request = self.request  # type: ignore[attr-defined]
        return validated(
            serializer_class, request.data, instance=instance, partial=partial, **context
        )


class AsSent(serializers.JSONField):
    """A field passed to the service as sent (the service checks it and names it in its
    error); listed so that the body may carry it."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)
