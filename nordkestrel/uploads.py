"""Refusing uploads by their declared size, before the body is read or parsed."""

from __future__ import annotations

from django.http import HttpRequest

# Room for multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


def declared_too_large(request: HttpRequest, max_file_bytes: int) -> bool:
    """Whether the request says it carries more than a file of ``max_file_bytes`` needs."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return length > max_file_bytes + MULTIPART_OVERHEAD
