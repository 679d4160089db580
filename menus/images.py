"""Uploaded images: decoded for real, re-encoded small and clean, stored under unguessable keys.

Nothing an uploader sends is kept: the bytes are decoded by Pillow (the extension, the file
name and the declared content type are never trusted), and a fresh WebP is encoded from the
pixels, so EXIF (GPS positions, camera serials), XMP, ICC profiles and anything appended to the
file are gone. WebP keeps transparency, which logos need, and is smaller than JPEG at the same
quality. Keys carry the restaurant and 192 random bits, so one restaurant's files can be
neither guessed nor enumerated from another's.
"""

from __future__ import annotations

import io
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage

from nordkestrel.errors import InvalidInput

if TYPE_CHECKING:
    from PIL import Image

# Pillow is imported by the functions that decode, not at module level: only an upload needs
# it, and every menu view imports this module (tests/test_lazy_imports.py checks).

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# A decompression bomb is a small file that claims a huge canvas; the canvas is checked from
# the header, before any pixel is decoded. 40 MP covers every phone camera.
MAX_PIXELS = 40_000_000
MAX_SIDE = 1600
WEBP_QUALITY = 82
# Decoders Pillow may run on uploads: no other parser ever sees the bytes.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
# What they report: a JPEG carrying extra pictures (many phones write them) decodes as MPO.
JPEG_FORMATS = frozenset({"JPEG", "MPO"})
DECODED_FORMATS = JPEG_FORMATS | set(ACCEPTED_FORMATS)

ITEMS = "items"
LOGOS = "logos"
KINDS = frozenset({ITEMS, LOGOS})

ATTR = "image"


@dataclass(frozen=True)
class ProcessedImage:
    content: bytes
    width: int
    height: int
    content_type: str = "image/webp"
    extension: str = "webp"


def _invalid(detail: str = "Upload a JPEG, PNG or WebP image.") -> InvalidInput:
    return InvalidInput(detail, code="invalid_image", attr=ATTR)


def _too_many_pixels() -> InvalidInput:
    return InvalidInput(
        f"The image is too large: at most {MAX_PIXELS // 1_000_000} megapixels.",
        code="too_many_pixels",
        attr=ATTR,
    )


def too_large() -> InvalidInput:
    return InvalidInput(
        f"The image is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.",
        code="too_large",
        attr=ATTR,
    )


def _read_capped(upload: File) -> bytes:
    """At most MAX_UPLOAD_BYTES; one byte more proves the upload is too large."""
    if (getattr(upload, "size", None) or 0) > MAX_UPLOAD_BYTES:
        raise too_large()
    if upload.seekable():
        upload.seek(0)
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise too_large()
    if not data:
        raise _invalid("The file is empty.")
    return data


def _open(data: bytes) -> Image.Image:
    from PIL import Image

    image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    if image.format not in DECODED_FORMATS:
        raise _invalid()
    width, height = image.size
    if width < 1 or height < 1:
        raise _invalid()
    if width * height > MAX_PIXELS:
        raise _too_many_pixels()
    return image


def _decode(data: bytes) -> Image.Image:
    """The first frame, fully decoded and upright; raises InvalidInput for anything else."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        # verify() walks the file's structure (chunk checksums); it leaves the image unusable,
        # so the pixels come from a second open.
        with _open(data) as probe:
            probe.verify()
        image = _open(data)
        if image.format in JPEG_FORMATS:
            # Let libjpeg scale down while decoding (as thumbnail() would): less memory.
            image.draft(None, (2 * MAX_SIDE, 2 * MAX_SIDE))
        image.load()
        upright = ImageOps.exif_transpose(image)
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own limit tripped before ours could (or its warning is set to raise).
        raise _too_many_pixels() from None
    except UnidentifiedImageError:
        raise _invalid() from None
    except Exception as error:
        # Truncated or corrupt: parsers of hostile bytes fail in many ways (OSError,
        # SyntaxError, struct.error, ...), and every one of them means "not an image".
        logger.info("Rejected an undecodable image: %r", error)
        raise _invalid() from None
    return upright


def _normalised(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when the image really uses transparency."""
    if image.mode.startswith("I"):
        # 16-bit greyscale PNG: scale to 8 bits instead of clipping everything to white.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    opaque = rgba.getchannel("A").getextrema()[0] == 255
    return rgba.convert("RGB") if opaque else rgba


def process_image(upload: File) -> ProcessedImage:
    """Decode ``upload`` (JPEG, PNG or WebP, at most 5 MB) and re-encode it as a clean WebP."""
    from PIL import Image

    data = _read_capped(upload)
    image = _decode(data)
    try:
        image = _normalised(image)
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        output = io.BytesIO()
        # Only what is passed here is written: no exif, xmp or icc_profile.
        image.save(output, format="WEBP", quality=WEBP_QUALITY, method=4)
    except (OSError, ValueError) as error:
        logger.warning("Could not re-encode an uploaded image", exc_info=error)
        raise _invalid() from None
    return ProcessedImage(content=output.getvalue(), width=image.width, height=image.height)


def key_prefix(restaurant_id: int, kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"Unknown image kind {kind!r}")
    return f"restaurants/{int(restaurant_id)}/{kind}/"


def store_image(restaurant_id: int, processed: ProcessedImage, kind: str) -> str:
    """Save through Django's default storage; returns the key to keep on the model."""
    key = f"{key_prefix(restaurant_id, kind)}{secrets.token_urlsafe(24)}.{processed.extension}"
    return default_storage.save(key, ContentFile(processed.content))


def delete_image(restaurant_id: int, kind: str, key: str) -> None:
    """Delete a stored image of this restaurant; a key outside its folder is left alone.

    Runs after commit: a storage hiccup is logged, never turned into an error for a request
    whose change is already saved.
    """
    if not key or not key.startswith(key_prefix(restaurant_id, kind)) or ".." in key:
        return
    try:
        default_storage.delete(key)
    except Exception:
        logger.warning("Could not delete the replaced image %s", key, exc_info=True)


def image_url(key: str) -> str:
    """Where a browser fetches the image (a signed URL unless a public domain is set)."""
    return default_storage.url(key) if key else ""
