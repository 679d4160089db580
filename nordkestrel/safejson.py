"""JSON from outside, read with bounds: API bodies, Stripe events, import files, cursors.

``json.loads`` recurses once per level of nesting, so ``[[[[...`` 100,000 deep raises
``RecursionError`` (in the parser or in whatever walks the result next: a serializer, the
Stripe SDK), and it reads whatever size it is given. ``loads`` checks the size first, then
the nesting without recursing (``check_depth``), and only then parses, so a document that
gets through is one every later step can walk. Each refusal is a ``JSONRefused`` (a
``ValueError``) carrying the status, code and detail of its answer in the error shape.
"""

from __future__ import annotations

import json
import re
from typing import IO, Any

from django.conf import settings

# Deeper than any document the product reads (a menu import is 6 levels, a Stripe event
# about 8), far below Python's recursion limit.
MAX_DEPTH = 64

# A string from its opening quote to its closing one, or to the end of a text where it never
# closes (possessive: linear whatever the escapes).
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.DOTALL)
# Every byte but brackets is dropped; openers become "(" and closers ")".
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_ONE_KIND = bytes.maketrans(b"[]{}", b"()()")
_PAIR = b"()"


class JSONRefused(ValueError):
    """JSON that is not read: malformed, too deep or too large."""

    status = 400
    code = "invalid_json"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class JSONTooDeep(JSONRefused):
    code = "too_deep"


class JSONTooLarge(JSONRefused):
    status = 413
    code = "payload_too_large"


def default_max_bytes() -> int:
    """The body size Django accepts for a form (``DATA_UPLOAD_MAX_MEMORY_SIZE``)."""
    limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return limit if limit is not None else 2_621_440


def check_depth(data: bytes, max_depth: int = MAX_DEPTH) -> None:
    """Refuse UTF-8 ``data`` whose arrays and objects nest deeper than ``max_depth``.

    No recursion and no loop over the bytes in Python: strings are cut out and everything
    but the brackets dropped (one regular expression, one ``translate``); then each round of
    ``replace`` removes the innermost pairs, exactly one level of nesting per round. More
    than ``max_depth`` rounds is too deep. What is left has no pair: closes that match
    nothing (the parser stops at the first, before any deeper nesting), then opens never
    closed, each adding a level to the pairs removed inside it. Malformed text that is not
    too deep is left for the parser to refuse.
    """
    brackets = _STRING.sub(b"", data).translate(_ONE_KIND, _NOT_BRACKETS)
    levels = 0
    while _PAIR in brackets:
        if levels == max_depth:
            raise JSONTooDeep(f"The JSON is nested more than {max_depth} levels deep.")
        brackets = brackets.replace(_PAIR, b"")
        levels += 1
    if brackets.startswith(b")"):
        return
    if len(brackets) + levels > max_depth:
        raise JSONTooDeep(f"The JSON is nested more than {max_depth} levels deep.")


def _strict_constant(name: str) -> Any:
    raise JSONRefused(f"{name} is not a JSON value.")


def loads(data: bytes | str, *, max_bytes: int | None = None, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed document, or ``JSONRefused``. Bytes must be UTF-8 (a BOM is allowed);
    ``NaN`` and ``Infinity`` are refused, as in strict JSON."""
    limit = default_max_bytes() if max_bytes is None else max_bytes
    if len(data) > limit:
        raise JSONTooLarge(f"The JSON is larger than {limit} bytes.")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise JSONRefused("The JSON is not UTF-8 text.") from None
        check_depth(data, max_depth)
    else:
        text = data
        check_depth(data.encode("utf-8", "surrogatepass"), max_depth)
    try:
        return json.loads(text, parse_constant=_strict_constant)
    except JSONRefused:
        raise
    except ValueError as error:  # malformed, or a number too long to convert
        raise JSONRefused(f"The JSON is malformed: {error}") from None


def read_limited(stream: IO[bytes], max_bytes: int, declared: int | None = None) -> bytes:
    """At most ``max_bytes`` from ``stream``; more (or a declared length over the limit,
    checked before anything is read) is ``JSONTooLarge``."""
    if declared is not None and declared > max_bytes:
        raise JSONTooLarge(f"The body is larger than {max_bytes} bytes.")
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise JSONTooLarge(f"The body is larger than {max_bytes} bytes.")
    return data
