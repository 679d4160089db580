"""Text that PostgreSQL can store: JSON and form input can spell both NUL and lone UTF-16
surrogates, and either makes the database refuse the row (a 500 unless checked first)."""

from __future__ import annotations


def storable(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
