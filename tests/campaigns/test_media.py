"""campaigns.media: the guidance shown before an upload comes from the limits the upload enforces;
a very large image is refused or accepted with a warning; media a carrier cannot fetch is named."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation
from PIL import Image

from campaigns import media
from campaigns.media import media_guidance, store_media, unreachable_media
from tests.accounts.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PUBLIC_BASE_URL = "https://console.example.jp"


def png(size, mode="L"):
    buffer = io.BytesIO()
    Image.new(mode, size, 200).save(buffer, "PNG")
    return buffer.getvalue()


def test_guidance_names_each_kinds_limits_from_the_upload_checks(monkeypatch):
    with translation.override("en"):
        texts = {item["kind"]: item["text"] for item in media_guidance()}
    assert texts["image"].startswith("Image: JPEG, PNG, GIF or WebP, at most 10 MB and 40 megapixels.")
    assert "Best under 2 MB and 2,000 px on the longer side." in texts["image"]
    assert texts["video"] == "Video: MP4 or WebM, at most 100 MB."
    assert texts["file"] == "File: PDF, at most 100 MB."
    # One source of truth: change the limit the upload enforces and the guidance follows.
    monkeypatch.setitem(media.KIND_MAX_BYTES, "image", 5 * 1024 * 1024)
    with translation.override("ja"):
        image = media_guidance(("image",))[0]
    assert image["max_bytes"] == 5 * 1024 * 1024
    assert "5 MB" in image["text"] and "画像" in image["text"]


def test_a_91_mb_png_is_refused_with_the_image_limit():
    upload = SimpleUploadedFile("poster.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (91 * 1024 * 1024), "image/png")
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        store_media(upload, OrganizationFactory())
    assert refused.value.messages == ["An image can be at most 10 MB on +Message; this one is 91.0 MB."]


def test_a_6000_px_image_within_the_limits_is_accepted_with_a_warning():
    upload = SimpleUploadedFile("huge.png", png((6000, 6000)), "image/png")
    with translation.override("en"):
        stored = store_media(upload, OrganizationFactory())
    assert (stored.kind, stored.width, stored.height) == ("image", 6000, 6000)
    assert len(stored.warnings) == 1
    assert stored.warnings[0].startswith("This image is 6,000×6,000 px and ")
    assert "consider resizing it" in stored.warnings[0]


def test_a_phone_sized_image_gets_no_warning():
    stored = store_media(SimpleUploadedFile("ok.png", png((1200, 800)), "image/png"), OrganizationFactory())
    assert stored.warnings == ()


def test_media_a_carrier_cannot_fetch_is_named_with_its_field():
    document = {"carousel": {"cards": [
        {"title": "A", "media": {"url": "https://cdn.example.jp/a.jpg"}},
        {"title": "B", "media": {"url": "http://127.0.0.1:8000/media/1/b.jpg"}},
        {"title": "C", "media": {"url": "http://192.168.1.20/c.jpg"}},
    ]}}
    with translation.override("en"):
        warnings = unreachable_media(document)
    assert [warning["path"] for warning in warnings] == ["carousel.cards[1].media.url", "carousel.cards[2].media.url"]
    assert "Carriers cannot fetch the media at 127.0.0.1: it is a loopback address" in warnings[0]["message"]
    assert "PUBLIC_BASE_URL" in warnings[0]["message"]
    assert "a private network address" in warnings[1]["message"]
    with translation.override("ja"):
        assert "ループバックアドレス" in unreachable_media(document)[0]["message"]
    assert unreachable_media({"media": {"url": "https://cdn.example.jp/a.jpg", "kind": "image"}}) == []
    assert unreachable_media({"text": "こんにちは"}) == []
