"""Where export files live, and the short-lived links that hand them out.

Files go to the ``exports`` storage (settings.STORAGES): a folder on disk outside MEDIA_ROOT in
development, a private bucket in production. Keys carry the restaurant and 192 random bits, so
they can be neither guessed nor enumerated. Nothing here is public: a bucket gives presigned
links that expire after ``EXPORT_LINK_SECONDS``; on disk, the link is a view that checks the
signed-in staff member and a signed token of the same lifetime.
"""

from __future__ import annotations

import logging
import secrets
from typing import IO, Any

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

logger = logging.getLogger(__name__)

ALIAS = "exports"
TOKEN_SALT = "exports.download"  # noqa: S105 (a signing namespace, not a secret)


def export_storage() -> Storage:
    return storages[ALIAS]


def serves_itself() -> bool:
    """Whether downloads go through our own view (files on disk) rather than the bucket."""
    return isinstance(export_storage(), FileSystemStorage)


def key_prefix(restaurant_id: int) -> str:
    return f"restaurants/{int(restaurant_id)}/exports/"


def new_key(restaurant_id: int, extension: str) -> str:
    return f"{key_prefix(restaurant_id)}{secrets.token_urlsafe(24)}.{extension}"


def belongs_to(restaurant_id: int, key: str) -> bool:
    return bool(key) and key.startswith(key_prefix(restaurant_id)) and ".." not in key


def save(key: str, content: IO[bytes]) -> str:
    """Store ``content`` under ``key`` (an S3 multipart upload when large); returns the key."""
    stored = export_storage().save(key, File(content, name=key))
    return str(stored)


def delete(restaurant_id: int, key: str) -> None:
    """Delete a stored export file of this restaurant; a key outside its folder is left alone."""
    if belongs_to(restaurant_id, key):
        export_storage().delete(key)


def open_file(key: str) -> File:
    return export_storage().open(key, "rb")


def _disposition(file_name: str) -> str:
    return f'attachment; filename="{file_name}"'


def bucket_url(key: str, *, file_name: str, content_type: str) -> str:
    """A presigned GET link to the object, valid for EXPORT_LINK_SECONDS."""
    parameters: dict[str, Any] = {
        "ResponseContentDisposition": _disposition(file_name),
        "ResponseContentType": content_type,
    }
    storage: Any = export_storage()
    return str(storage.url(key, parameters=parameters, expire=settings.EXPORT_LINK_SECONDS))


def download_token(*, restaurant_id: int, export_id: int, key: str) -> str:
    """A token naming one file of one restaurant's export; checked with its age."""
    signer = signing.TimestampSigner(salt=TOKEN_SALT)
    return signer.sign_object({"r": restaurant_id, "e": export_id, "k": key}, compress=True)


class LinkExpired(Exception):
    pass


class LinkInvalid(Exception):
    pass


def check_download_token(token: str, *, restaurant_id: int, export_id: int, key: str) -> None:
    """Raise LinkExpired past EXPORT_LINK_SECONDS, LinkInvalid for anything else not ours."""
    signer = signing.TimestampSigner(salt=TOKEN_SALT)
    try:
        value = signer.unsign_object(token, max_age=settings.EXPORT_LINK_SECONDS)
    except signing.SignatureExpired:
        raise LinkExpired from None
    except (signing.BadSignature, ValueError, TypeError):
        raise LinkInvalid from None
    if value != {"r": restaurant_id, "e": export_id, "k": key}:
        raise LinkInvalid
