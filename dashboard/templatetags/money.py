from django import template

from nordkestrel.money import to_major

register = template.Library()


@register.filter
def money(minor: int | None, currency: str) -> str:
    """Minor units as the restaurant reads them: 1250, "EUR" → "12.50"."""
    if minor is None:
        return ""
    sign = "-" if minor < 0 else ""
    return f"{sign}{to_major(abs(minor), currency)}"


@register.filter
def lookup(mapping: dict, key: object) -> object:
    return mapping.get(str(key)) if mapping else None
