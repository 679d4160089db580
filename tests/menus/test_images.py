"""Image uploads: real decoding, re-encoding without metadata, storage keys, limits, S3 path."""

import io
import os
import re
import struct
import urllib.request
import zlib

import boto3
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from audit.models import AuditEvent
from menus import images
from menus.models import Item, MenuVersion
from nordkestrel.errors import InvalidInput
from tenants.context import tenant_context
from tenants.models import Restaurant
from tests.factories import api_client

KEY_PATTERN = r"restaurants/{id}/{kind}/[A-Za-z0-9_-]{{32}}\.webp"


# --- Test images -----------------------------------------------------------------------------


def picture(fmt, size=(64, 48), mode="RGB", color=(200, 30, 30), **save):
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, fmt, **save)
    return buffer.getvalue()


def jpeg_with_exif(size=(60, 40), orientation=6):
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0110] = "Serial 12345"  # Model
    exif[0x0112] = orientation  # Orientation: 6 = rotate 90° clockwise to show
    exif[0x8825] = {2: (60.0, 10.0, 0.0), 1: "N"}  # GPS latitude
    return picture("JPEG", size, exif=exif.tobytes())


def png_claiming(width, height):
    """A tiny PNG whose header claims a canvas of width x height (a decompression bomb)."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    rows = zlib.compress(b"\x00" * 1024, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def as_upload(data, name="photo.png", content_type="image/png"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def decoded(data):
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# --- Fixtures --------------------------------------------------------------------------------


class Media:
    def __init__(self, root):
        self.root = root

    def __call__(self):
        """The keys of every stored file."""
        return sorted(
            str(path.relative_to(self.root)) for path in self.root.rglob("*") if path.is_file()
        )

    def read(self, key):
        return (self.root / key).read_bytes()


@pytest.fixture
def media(settings, tmp_path):
    """Stored files go to a temporary folder, whose contents the test can list and read."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path},
        },
    }
    return Media(tmp_path)


@pytest.fixture
def ours(restaurants):
    return restaurants[0]


def make_item(restaurant, name="Soup", **fields):
    with tenant_context(restaurant):
        return Item.objects.create(name=name, price=500, **fields)


def fresh_item(item):
    with tenant_context(Restaurant.objects.get(pk=item.restaurant_id)):
        return Item.objects.get(pk=item.pk)


def upload_item_image(member, item, data, name="photo.png", content_type="image/png", **extra):
    return api_client(member).post(
        reverse("api-item-image", kwargs={"pk": item.pk}),
        data={"image": as_upload(data, name, content_type)},
        **extra,
    )


def upload_logo(member, data):
    return api_client(member).post(reverse("api-restaurant-logo"), data={"image": as_upload(data)})


# --- Processing ------------------------------------------------------------------------------


class TestProcessing:
    @pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
    def test_each_accepted_format_is_re_encoded_as_webp(self, fmt):
        original = picture(fmt, (64, 48))
        processed = images.process_image(as_upload(original))
        result = decoded(processed.content)
        assert result.format == "WEBP"
        assert result.size == (64, 48) == (processed.width, processed.height)
        assert processed.content != original

    def test_a_phone_jpeg_with_extra_pictures_is_accepted(self):
        buffer = io.BytesIO()
        first, depth_map = Image.new("RGB", (64, 48), "red"), Image.new("RGB", (64, 48), "blue")
        first.save(buffer, "MPO", save_all=True, append_images=[depth_map])
        processed = images.process_image(as_upload(buffer.getvalue(), "photo.jpg", "image/jpeg"))
        assert decoded(processed.content).size == (64, 48)

    def test_large_images_are_scaled_to_fit_1600(self):
        processed = images.process_image(as_upload(picture("PNG", (3200, 2000))))
        assert decoded(processed.content).size == (1600, 1000)

    def test_exif_is_applied_then_removed(self):
        original = jpeg_with_exif(size=(60, 40), orientation=6)
        assert decoded(original).getexif()[0x010F] == "SpyCam", "the fixture really has EXIF"
        processed = images.process_image(as_upload(original, "photo.jpg", "image/jpeg"))
        result = decoded(processed.content)
        assert result.size == (40, 60), "turned upright as the camera said"
        assert not result.getexif()
        assert "exif" not in result.info and "xmp" not in result.info
        assert b"SpyCam" not in processed.content and b"Serial" not in processed.content

    def test_transparency_is_kept_and_opaque_alpha_dropped(self):
        clear = picture("PNG", mode="RGBA", color=(0, 0, 0, 0))
        opaque = picture("PNG", mode="RGBA", color=(10, 20, 30, 255))
        assert decoded(images.process_image(as_upload(clear)).content).mode == "RGBA"
        assert decoded(images.process_image(as_upload(opaque)).content).mode == "RGB"

    def test_a_16_bit_greyscale_png_keeps_its_tones(self):
        grey = picture("PNG", mode="I;16", color=32768)
        result = decoded(images.process_image(as_upload(grey)).content).convert("L")
        assert 120 <= result.getpixel((0, 0)) <= 136

    def test_the_extension_and_content_type_are_not_trusted(self):
        processed = images.process_image(as_upload(picture("PNG"), "menu.gif", "text/plain"))
        assert decoded(processed.content).format == "WEBP"

    @pytest.mark.parametrize(
        ("data", "code"),
        [
            (b"not an image at all\n" * 10, "invalid_image"),
            (picture("GIF"), "invalid_image"),
            (picture("BMP"), "invalid_image"),
            (picture("JPEG", (300, 200))[:400], "invalid_image"),
            (png_claiming(100_000, 100_000), "too_many_pixels"),
            (png_claiming(8_000, 6_000), "too_many_pixels"),
            (b"\0" * (images.MAX_UPLOAD_BYTES + 1), "too_large"),
        ],
        ids=["text", "gif", "bmp", "truncated-jpeg", "bomb", "48-megapixels", "over-5-mb"],
    )
    def test_rejections(self, data, code):
        with pytest.raises(InvalidInput) as raised:
            images.process_image(as_upload(data))
        assert (raised.value.code, raised.value.attr) == (code, "image")


# --- API -------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestItemImageAPI:
    def test_a_manager_sets_an_item_image(self, roster, ours, media):
        item = make_item(ours)
        response = upload_item_image(roster[("ours", "manager")], item, picture("JPEG"))
        assert response.status_code == 200, response.content
        body = response.json()
        assert re.fullmatch(KEY_PATTERN.format(id=ours.pk, kind="items"), body["image"])
        assert body["url"] == f"/media/{body['image']}"
        assert fresh_item(item).image == body["image"]
        assert media() == [body["image"]]
        assert decoded(media.read(body["image"])).format == "WEBP"

    def test_two_uploads_get_different_unguessable_keys(self, roster, ours, media):
        first, second = make_item(ours, "A"), make_item(ours, "B")
        manager = roster[("ours", "manager")]
        one = upload_item_image(manager, first, picture("PNG")).json()["image"]
        two = upload_item_image(manager, second, picture("PNG")).json()["image"]
        assert one != two
        assert one.split("/")[:3] == two.split("/")[:3] == ["restaurants", str(ours.pk), "items"]

    def test_the_replaced_file_is_deleted_after_commit(
        self, roster, ours, media, django_capture_on_commit_callbacks
    ):
        item = make_item(ours)
        manager = roster[("ours", "manager")]
        old = upload_item_image(manager, item, picture("PNG")).json()["image"]
        with django_capture_on_commit_callbacks(execute=True):
            new = upload_item_image(manager, item, picture("WEBP")).json()["image"]
        assert media() == [new]
        assert old != new

    @pytest.mark.parametrize("holder", ["published version", "duplicated item"])
    def test_a_replaced_file_still_shown_elsewhere_is_kept(
        self, roster, ours, media, django_capture_on_commit_callbacks, holder
    ):
        item = make_item(ours)
        manager = roster[("ours", "manager")]
        old = upload_item_image(manager, item, picture("PNG")).json()["image"]
        with tenant_context(ours):
            if holder == "published version":
                MenuVersion.objects.create(
                    number=1,
                    document={"items": {str(item.pk): {"id": item.pk, "image": old}}},
                    content_hash="0" * 64,
                    published_at=timezone.now(),
                )
            else:
                Item.objects.create(name="Copy", price=500, image=old)
        with django_capture_on_commit_callbacks(execute=True):
            new = upload_item_image(manager, item, picture("WEBP")).json()["image"]
        assert media() == sorted([old, new]), "the live menu still shows the old image"

    @pytest.mark.parametrize("role", ["kitchen", "cashier"])
    def test_roles_without_menu_write_get_403(self, roster, ours, media, role):
        item = make_item(ours)
        response = upload_item_image(roster[("ours", role)], item, picture("PNG"))
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert media() == []
        assert fresh_item(item).image == ""

    def test_another_restaurants_item_is_404(self, roster, restaurants, media):
        their_key = f"restaurants/{restaurants[1].pk}/items/theirs.webp"
        theirs = make_item(restaurants[1], "Their soup", image=their_key)
        response = upload_item_image(roster[("ours", "owner")], theirs, picture("PNG"))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert media() == []
        assert fresh_item(theirs).image == their_key

    def test_anonymous_is_401(self, ours, media):
        item = make_item(ours)
        response = api_client(None).post(
            reverse("api-item-image", kwargs={"pk": item.pk}),
            data={"image": as_upload(picture("PNG"))},
        )
        assert response.status_code == 401
        assert media() == []

    @pytest.mark.parametrize(
        ("data", "name", "code"),
        [
            (b"GIF89a? no, just text\n" * 20, "menu.png", "invalid_image"),
            (picture("GIF"), "menu.gif", "invalid_image"),
            (picture("PNG", (300, 200))[:300], "menu.png", "invalid_image"),
            (png_claiming(100_000, 100_000), "bomb.png", "too_many_pixels"),
            (os.urandom(images.MAX_UPLOAD_BYTES + 1), "huge.jpg", "too_large"),
            # Past the multipart allowance: refused before the body is parsed.
            (os.urandom(images.MAX_UPLOAD_BYTES + 200_000), "huger.jpg", "too_large"),
        ],
        ids=["text-named-png", "gif", "truncated-png", "bomb", "over-5-mb", "far-over-5-mb"],
    )
    def test_rejected_uploads_are_400_and_store_nothing(
        self, roster, ours, media, data, name, code
    ):
        item = make_item(ours)
        response = upload_item_image(roster[("ours", "manager")], item, data, name=name)
        assert response.status_code == 400, response.content
        refused = {"code": code, "detail": response.json()["detail"], "attr": "image"}
        assert response.json() == {"type": "validation_error", **refused, "errors": [refused]}
        assert media() == []
        assert fresh_item(item).image == ""

    def test_a_missing_file_is_a_field_error(self, roster, ours, media):
        item = make_item(ours)
        response = api_client(roster[("ours", "manager")]).post(
            reverse("api-item-image", kwargs={"pk": item.pk}), data={"other": "x"}
        )
        assert response.status_code == 400
        assert response.json()["attr"] == "other"
        response = api_client(roster[("ours", "manager")]).post(
            reverse("api-item-image", kwargs={"pk": item.pk}), data={}
        )
        assert (response.status_code, response.json()["attr"]) == (400, "image")

    def test_json_is_not_accepted(self, roster, ours, media):
        item = make_item(ours)
        response = api_client(roster[("ours", "manager")]).post(
            reverse("api-item-image", kwargs={"pk": item.pk}),
            data='{"image": "restaurants/2/items/x.webp"}',
            content_type="application/json",
        )
        assert response.status_code == 415
        assert fresh_item(item).image == ""


@pytest.mark.django_db
class TestLogoAPI:
    def test_an_admin_sets_the_logo_and_it_is_audited(
        self, roster, ours, media, django_capture_on_commit_callbacks
    ):
        admin = roster[("ours", "admin")]
        first = upload_logo(admin, picture("PNG", mode="RGBA", color=(0, 0, 0, 0)))
        assert first.status_code == 200, first.content
        with django_capture_on_commit_callbacks(execute=True):
            second = upload_logo(admin, picture("JPEG"))
        key = second.json()["image"]
        assert re.fullmatch(KEY_PATTERN.format(id=ours.pk, kind="logos"), key)
        assert Restaurant.objects.get(pk=ours.pk).logo == key
        assert media() == [key], "the replaced logo is deleted"
        with tenant_context(ours):
            events = list(
                AuditEvent.objects.filter(action="restaurant.settings_changed").order_by("sequence")
            )
        assert [event.changes["logo"]["after"] for event in events] == [
            first.json()["image"],
            key,
        ]

    @pytest.mark.parametrize("role", ["manager", "cashier", "kitchen"])
    def test_roles_without_restaurant_write_get_403(self, roster, ours, media, role):
        response = upload_logo(roster[("ours", role)], picture("PNG"))
        assert response.status_code == 403
        assert media() == []
        assert Restaurant.objects.get(pk=ours.pk).logo == ""

    def test_a_bad_logo_is_rejected(self, roster, ours, media):
        response = upload_logo(roster[("ours", "owner")], b"<svg onload=alert(1)>")
        assert (response.status_code, response.json()["code"]) == (400, "invalid_image")
        assert media() == []


# --- Rate limits -----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_ratelimit_clock")
class TestUploadRateLimits:
    def test_per_ip(self, settings, roster, ours, media):
        settings.MENU_UPLOAD_RATE_PER_IP = "2/h"
        item = make_item(ours)
        manager = roster[("ours", "manager")]
        answers = [upload_item_image(manager, item, picture("PNG")) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[2].json()["code"] == "rate_limited"
        assert 0 < int(answers[2]["Retry-After"]) <= 3600
        assert len(media()) == 2
        # Another client address still may upload.
        other = upload_item_image(manager, item, picture("PNG"), REMOTE_ADDR="10.0.0.9")
        assert other.status_code == 200

    def test_per_restaurant_across_addresses_and_both_routes(
        self, settings, roster, restaurants, media
    ):
        settings.MENU_UPLOAD_RATE_PER_RESTAURANT = "2/h"
        ours, theirs = restaurants
        item = make_item(ours)
        first = upload_item_image(roster[("ours", "manager")], item, b"x", REMOTE_ADDR="10.0.0.1")
        assert first.status_code == 400, "a refused upload still counts"
        second = api_client(roster[("ours", "owner")]).post(
            reverse("api-restaurant-logo"),
            data={"image": as_upload(picture("PNG"))},
            REMOTE_ADDR="10.0.0.2",
        )
        assert second.status_code == 200
        third = upload_item_image(
            roster[("ours", "admin")], item, picture("PNG"), REMOTE_ADDR="10.0.0.3"
        )
        assert third.status_code == 429
        assert int(third["Retry-After"]) > 0
        # Another restaurant has its own budget.
        their_item = make_item(theirs)
        elsewhere = upload_item_image(roster[("theirs", "manager")], their_item, picture("PNG"))
        assert elsewhere.status_code == 200


# --- S3 (Cloudflare R2's API) against a server on loopback ------------------------------------


@pytest.fixture
def s3_bucket(s3_server, settings):
    options = {
        "bucket_name": "menu-images",
        "endpoint_url": s3_server,
        "access_key": "test-access-key",
        "secret_key": "test-secret-key",
        "region_name": "us-east-1",
        "signature_version": "s3v4",
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": False,
    }
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id=options["access_key"],
        aws_secret_access_key=options["secret_key"],
        region_name=options["region_name"],
    )
    client.create_bucket(Bucket=options["bucket_name"])
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }
    yield client, options["bucket_name"]
    listed = client.list_objects_v2(Bucket=options["bucket_name"]).get("Contents", [])
    for entry in listed:
        client.delete_object(Bucket=options["bucket_name"], Key=entry["Key"])
    client.delete_bucket(Bucket=options["bucket_name"])


@pytest.mark.django_db
def test_uploads_go_to_the_s3_bucket(roster, ours, s3_bucket, django_capture_on_commit_callbacks):
    client, bucket = s3_bucket
    item = make_item(ours)
    manager = roster[("ours", "manager")]
    original = jpeg_with_exif()
    response = upload_item_image(manager, item, original, "photo.jpg", "image/jpeg")
    assert response.status_code == 200, response.content
    key = response.json()["image"]
    assert key.startswith(f"restaurants/{ours.pk}/items/")

    stored = client.get_object(Bucket=bucket, Key=key)
    assert stored["ContentType"] == "image/webp"
    content = stored["Body"].read()
    assert content != original
    result = decoded(content)
    assert result.format == "WEBP" and not result.getexif()

    # The URL is signed (the bucket is private) and serves the same bytes.
    url = response.json()["url"]
    assert url.startswith(f"{client.meta.endpoint_url}/{bucket}/{key}?")
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as fetched:  # noqa: S310 (loopback server)
        assert fetched.read() == content

    # Replacing the image deletes the old object once the change commits.
    with django_capture_on_commit_callbacks(execute=True):
        newer = upload_item_image(manager, item, picture("PNG")).json()["image"]
    keys = [entry["Key"] for entry in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [newer]
