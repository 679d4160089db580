"""The API's JSON parser: DRF's, reading through the bounded reader (``nordkestrel.safejson``).

A body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a 413 (checked on ``Content-Length``
before anything is read, and again on what is read); JSON nested deeper than 64 levels,
malformed, or holding ``NaN`` is a 400 ``parse_error`` saying which. Nothing in such a
request reaches a view.
"""

from __future__ import annotations

import codecs
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, parsers

from nordkestrel import safejson


def _declared_length(parser_context: dict[str, Any]) -> int | None:
    request = parser_context.get("request")
    meta = getattr(request, "META", {})
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        context = parser_context or {}
        limit = safejson.default_max_bytes()
        try:
            raw = safejson.read_limited(stream, limit, _declared_length(context))
            return safejson.loads(_text(raw, context), max_bytes=limit)
        except safejson.JSONTooLarge:
            raise RequestDataTooBig("The request body is too large.") from None
        except safejson.JSONRefused as refused:
            raise exceptions.ParseError(f"JSON parse error: {refused.detail}") from None


def _text(raw: bytes, context: dict[str, Any]) -> bytes | str:
    """The body as the reader takes it: UTF-8 bytes as they are (JSON's own encoding), a
    body declared in another charset decoded from it."""
    try:
        encoding = codecs.lookup(context.get("encoding") or settings.DEFAULT_CHARSET).name
        return raw if encoding == "utf-8" else raw.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        raise safejson.JSONRefused("The body is not text in its declared charset.") from None
