"""Reading customers: search, and pages ordered by their last order (newest first).

Customers who have no counted order yet (their only orders are unpaid or cancelled) have no
last order; they come after everyone else. A page is found by keyset on
(last_order_at, id), so paging stays fast and stable however large the list grows.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import models
from django.db.models import F, Q

from customers.models import Customer
from nordkestrel import safejson

MAX_SEARCH_LENGTH = 254
# A cursor we write is under 100 bytes of JSON; a longer one is not ours.
MAX_CURSOR_BYTES = 512


def search_customers(*, q: str = "", marketing_consent: bool | None = None) -> models.QuerySet:
    """The current restaurant's customers whose email, name or phone contains ``q``."""
    queryset = Customer.objects.all()
    q = q.strip()
    if q:
        queryset = queryset.filter(
            Q(email__icontains=q) | Q(name__icontains=q) | Q(phone__icontains=q)
        )
    if marketing_consent is not None:
        queryset = queryset.filter(marketing_consent=marketing_consent)
    return queryset


# --- Pages by last order ---------------------------------------------------------------------


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class Position:
    last_order_at: datetime | None
    id: int

    @classmethod
    def of(cls, customer: Customer) -> Position:
        return cls(customer.last_order_at, customer.pk)


@dataclass(frozen=True)
class Cursor:
    position: Position
    # False: the page after the position; True: the page before it.
    backwards: bool = False

    def encode(self) -> str:
        moment = self.position.last_order_at
        raw = json.dumps(
            {
                "t": moment.isoformat() if moment else None,
                "i": self.position.id,
                "b": self.backwards,
            },
            separators=(",", ":"),
        )
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            padded = text + "=" * (-len(text) % 4)
            data = safejson.loads(
                base64.urlsafe_b64decode(padded.encode("ascii")), max_bytes=MAX_CURSOR_BYTES
            )
            moment = None if data["t"] is None else datetime.fromisoformat(data["t"])
            pk, backwards = data["i"], data["b"]
        except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error):
            raise InvalidCursor("That page link is not valid.") from None
        if (
            (moment is not None and moment.tzinfo is None)
            or type(pk) is not int
            or not 0 < pk < 2**63
            or type(backwards) is not bool
        ):
            raise InvalidCursor("That page link is not valid.")
        if moment is not None:
            # PostgreSQL takes offsets up to 15:59 only; a cursor we wrote is in UTC anyway.
            try:
                moment = moment.astimezone(UTC)
            except OverflowError:
                raise InvalidCursor("That page link is not valid.") from None
        return cls(Position(moment, pk), backwards)


@dataclass(frozen=True)
class Page:
    rows: list[Customer]
    next: Cursor | None
    previous: Cursor | None


NEWEST_FIRST = (F("last_order_at").desc(nulls_last=True), F("id").desc())
OLDEST_FIRST = (F("last_order_at").asc(nulls_first=True), F("id").asc())


def _after(position: Position) -> Q:
    """Rows that come after ``position`` in NEWEST_FIRST order."""
    moment = position.last_order_at
    if moment is None:
        return Q(last_order_at__isnull=True, id__lt=position.id)
    return (
        Q(last_order_at__lt=moment)
        | Q(last_order_at=moment, id__lt=position.id)
        | Q(last_order_at__isnull=True)
    )


def _before(position: Position) -> Q:
    """Rows that come before ``position`` in NEWEST_FIRST order."""
    moment = position.last_order_at
    if moment is None:
        return Q(last_order_at__isnull=False) | Q(last_order_at__isnull=True, id__gt=position.id)
    return Q(last_order_at__gt=moment) | Q(last_order_at=moment, id__gt=position.id)


def page_by_last_order(queryset: models.QuerySet, *, cursor: Cursor | None, size: int) -> Page:
    """One page of ``queryset``, newest last order first, with the cursors around it."""
    if cursor is not None and cursor.backwards:
        found = list(queryset.filter(_before(cursor.position)).order_by(*OLDEST_FIRST)[: size + 1])
        more = len(found) > size
        rows = found[:size][::-1]
        return Page(
            rows=rows,
            next=Cursor(Position.of(rows[-1])) if rows else None,
            previous=Cursor(Position.of(rows[0]), backwards=True) if more else None,
        )
    if cursor is not None:
        queryset = queryset.filter(_after(cursor.position))
    found = list(queryset.order_by(*NEWEST_FIRST)[: size + 1])
    rows = found[:size]
    return Page(
        rows=rows,
        next=Cursor(Position.of(rows[-1])) if len(found) > size else None,
        previous=Cursor(Position.of(rows[0]), backwards=True) if cursor and rows else None,
    )
