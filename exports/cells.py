"""SQL expressions that format one CSV cell, so PostgreSQL does all formatting inside COPY.

Formatting rows in Python tops out far below what ``COPY ... TO STDOUT`` streams, so each
column of an export is an expression built from these helpers:

- :func:`text`: user-written text, neutralised against formula injection: a cell starting
  with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'`` so Excel,
  LibreOffice and Google Sheets show it as text instead of running it.
- :func:`timestamp`: ISO 8601 with the offset (``2026-07-01T15:00:00+03:00``), in the
  session's time zone, which :mod:`exports.copy` sets to the restaurant's for the COPY.
- :func:`money`: integer minor units → a decimal string in major units (``12.50``; no
  decimals for zero-decimal currencies such as JPY); the currency is its own column.
- :func:`boolean`: ``true`` / ``false``.

Amounts, counts and ids are numbers PostgreSQL writes itself, never user text: a negative
amount (a modifier that lowers the price) stays ``-1.50``, a number to any spreadsheet, not a
formula, so numbers are not prefixed.

NULL and empty text are both written as an empty (unquoted) cell. Quoting (RFC 4180: commas,
quotes and line breaks inside a cell) is COPY's own ``FORMAT csv``.
"""

from __future__ import annotations

from nordkestrel.money import ZERO_DECIMAL

# chr() of a constant is folded once by the planner, not evaluated per row.
_FORMULA_STARTS = "'=', '+', '-', '@', chr(9), chr(13)"
_ZERO_DECIMAL = ", ".join(f"'{code}'" for code in sorted(ZERO_DECIMAL))
ISO_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'


def text(expression: str) -> str:
    """A text cell, prefixed with ``'`` when it could start a formula; empty text → NULL."""
    return (
        f"CASE WHEN left({expression}, 1) IN ({_FORMULA_STARTS}) "
        f"THEN '''' || ({expression}) ELSE NULLIF({expression}, '') END"
    )


def timestamp(expression: str) -> str:
    """A ``timestamptz`` as ISO 8601 with its offset in the session's time zone."""
    return f"to_char({expression}, '{ISO_FORMAT}')"


def major_units(expression: str, currency: str) -> str:
    """Minor units (an integer expression) → decimal text in major units, unprefixed; for
    use inside other text (summaries). ``currency`` is an SQL expression."""
    return (
        f"CASE WHEN {currency} IN ({_ZERO_DECIMAL}) THEN ({expression})::bigint::text "
        f"ELSE (({expression})::bigint * 0.01)::text END"
    )


def money(expression: str, currency: str = "%(currency)s") -> str:
    """A money cell: ``12.50`` (or ``1200`` for a zero-decimal currency)."""
    return major_units(expression, currency)


def boolean(expression: str) -> str:
    return f"({expression})::text"


def signed_major_units(expression: str, currency: str) -> str:
    """``+3.00`` / ``-0.50``: a price difference inside a summary."""
    return (
        f"CASE WHEN ({expression})::bigint > 0 THEN '+' ELSE '' END || "
        f"{major_units(expression, currency)}"
    )


def text_list(jsonb_array: str, separator: str = ", ") -> str:
    """The strings of a jsonb array joined (``vegan, gluten-free``); NULL when empty."""
    # An expression of the export's own SQL: no values in it.
    return (
        f"(SELECT string_agg(value, '{separator}' ORDER BY position) FROM "  # noqa: S608
        f"jsonb_array_elements_text(CASE WHEN jsonb_typeof({jsonb_array}) = 'array' "
        f"THEN {jsonb_array} ELSE '[]'::jsonb END) WITH ORDINALITY AS entries(value, position))"
    )
