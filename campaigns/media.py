"""Media uploads for the composer: checked by their bytes, streamed to default storage.

The name and the Content-Type a browser sends prove nothing, so the kind is read from the bytes:
Pillow opens images (JPEG, PNG, GIF, WebP; SVG and anything else refused) and re-encodes them, which
drops metadata and anything appended to the picture; video and files are recognised by their magic
numbers (MP4 ``ftyp`` box, WebM EBML header, PDF ``%PDF-``). Files go to default storage under
``media/<organization id>/`` in chunks — an upload is never read whole into memory — and the
composer keeps only the public URL in the content document.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from audit.services import audit_record
from core.egress import public_reach_problem

MAX_BYTES = 100 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000  # well above any phone screen; refuses decompression bombs
# What one message may carry on +Message, per kind: an upload above its kind's limit is refused
# with the limit named (the upload itself stops at MAX_BYTES, the largest of them).
KIND_MAX_BYTES = {"image": 10 * 1024 * 1024, "video": 100 * 1024 * 1024, "file": 100 * 1024 * 1024}
# Beyond these an image is accepted with a warning: phones show about 1,000–1,500 px across, and a
# bigger picture only downloads slower on mobile data (and is cut to size by the handset anyway).
IMAGE_RECOMMENDED_BYTES = 2 * 1024 * 1024
IMAGE_RECOMMENDED_LONG_SIDE = 2000
MB = 1024 * 1024
IMAGE_FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "GIF": ("gif", "image/gif"),
                 "WEBP": ("webp", "image/webp")}


@dataclass(frozen=True)
class StoredMedia:
    url: str
    kind: str  # image, video or file
    content_type: str
    size: int
    name: str  # the storage name
    width: int | None = None  # images only
    height: int | None = None
    warnings: tuple[str, ...] = ()  # accepted, but worth changing (e.g. a very large image)


def media_guidance(kinds=("image", "video", "file")) -> list[dict]:
    """What each media kind may be, said before the upload — from the limits the upload enforces."""
    texts = {
        "image": _("Image: JPEG, PNG, GIF or WebP, at most %(max_mb)d MB and %(max_mp)d megapixels. Best under "
                   "%(rec_mb)d MB and %(rec_px)s px on the longer side.")
        % {"max_mb": KIND_MAX_BYTES["image"] // MB, "max_mp": MAX_IMAGE_PIXELS // 1_000_000,
           "rec_mb": IMAGE_RECOMMENDED_BYTES // MB, "rec_px": f"{IMAGE_RECOMMENDED_LONG_SIDE:,}"},
        "video": _("Video: MP4 or WebM, at most %(max_mb)d MB.") % {"max_mb": KIND_MAX_BYTES["video"] // MB},
        "file": _("File: PDF, at most %(max_mb)d MB.") % {"max_mb": KIND_MAX_BYTES["file"] // MB},
    }
    return [{"kind": kind, "text": texts[kind], "max_bytes": KIND_MAX_BYTES[kind]} for kind in kinds]


def image_size_warning(width: int, height: int, size: int) -> str | None:
    """A warning for an image larger than phones need (still within the limits), or None."""
    if max(width, height) <= IMAGE_RECOMMENDED_LONG_SIDE and size <= IMAGE_RECOMMENDED_BYTES:
        return None
    return _(
        "This image is %(width)s×%(height)s px and %(size).1f MB, larger than phones need (best: at most "
        "%(rec_px)s px on the longer side and under %(rec_mb)d MB). It is accepted, but it downloads slowly on "
        "mobile data: consider resizing it."
    ) % {"width": f"{width:,}", "height": f"{height:,}", "size": size / MB, "rec_px": f"{IMAGE_RECOMMENDED_LONG_SIDE:,}",
         "rec_mb": IMAGE_RECOMMENDED_BYTES // MB}


class SizeLimitUploadHandler(FileUploadHandler):
    """Stops reading an upload once it passes ``MAX_BYTES``; the view then answers with the reason.

    Installed first in ``request.upload_handlers`` so a 2 GB body is not written to disk first.
    """

    def __init__(self, request=None, limit=None):
        super().__init__(request)
        self.limit = limit or MAX_BYTES
        self.received = 0
        self.too_large = False

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        # Raising here would escape the parser; note it and refuse the first chunk instead.
        if content_length and content_length > self.limit + 64 * 1024:
            self.too_large = True
        return None

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.too_large or self.received > self.limit:
            self.too_large = True
            # connection_reset=False: the rest of the body is read and dropped (never stored), so
            # the browser gets our answer instead of a reset connection.
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size):
        return None


def sniff_kind(head: bytes) -> tuple[str, str, str] | None:
    """(kind, extension, content type) of a video or document by its first bytes, or None."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "video", "mp4", "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", "webm", "video/webm"
    if head.startswith(b"%PDF-"):
        return "file", "pdf", "application/pdf"
    return None


def _looks_like_image(head: bytes) -> bool:
    return (
        head.startswith(b"\xff\xd8\xff")
        or head.startswith(b"\x89PNG\r\n\x1a\n")
        or head.startswith((b"GIF87a", b"GIF89a"))
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    )


def _read_head(upload, size=64) -> bytes:
    upload.seek(0)
    head = upload.read(size)
    upload.seek(0)
    return head


def _too_many_pixels() -> ValidationError:
    return ValidationError(_("The image is too large (more than 40 megapixels)."))


def _reencode_image(upload) -> tuple[ContentFile, str, str, tuple[int, int]]:
    # Pillow refuses to open an image of more than twice this many pixels (DecompressionBombError)
    # before it decodes anything; between once and twice, the check below refuses it.
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        upload.seek(0)
        with Image.open(upload) as probe:
            image_format = probe.format
            probe.verify()
        if image_format not in IMAGE_FORMATS:
            raise ValidationError(_("Only JPEG, PNG, GIF and WebP images are accepted."))
        upload.seek(0)
        with Image.open(upload) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise _too_many_pixels()
            dimensions = (image.width, image.height)
            buffer = io.BytesIO()
            if image_format == "JPEG":
                image.convert("RGB").save(buffer, "JPEG", quality=90, optimize=True)
            elif image_format == "GIF" and getattr(image, "is_animated", False):
                image.save(buffer, "GIF", save_all=True)
            else:
                image.save(buffer, image_format)
    except Image.DecompressionBombError:
        raise _too_many_pixels() from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError(_("The file is not a readable image.")) from None
    extension, content_type = IMAGE_FORMATS[image_format]
    return ContentFile(buffer.getvalue()), extension, content_type, dimensions


def _check_kind_size(upload, kind: str) -> None:
    """Refuse a file above what +Message carries for its kind, naming the limit."""
    limit = KIND_MAX_BYTES[kind]
    if upload.size is not None and upload.size > limit:
        labels = {"image": _("An image"), "video": _("A video"), "file": _("A file")}
        raise ValidationError(
            _("%(kind)s can be at most %(limit)d MB on +Message; this one is %(size).1f MB.")
            % {"kind": labels[kind], "limit": limit // MB, "size": upload.size / MB}
        )


def public_url(name: str) -> str:
    """An absolute http(s) URL for a stored file: the carriers fetch media from it."""
    url = default_storage.url(name)
    if url.startswith(("http://", "https://")):
        return url
    return settings.PUBLIC_BASE_URL.rstrip("/") + "/" + url.lstrip("/")


def store_media(upload, organization, expected_kind: str | None = None, *, actor=None, request=None) -> StoredMedia:
    """Check ``upload`` by its bytes and store it; raise ValidationError with the reason otherwise.

    ``expected_kind`` (image, video or file) refuses a file of another kind, e.g. a PDF in a card
    image slot. A stored file is recorded in the audit log (``media.uploaded``) as the ``actor``'s.
    """
    if upload is None:
        raise ValidationError(_("Choose a file to upload."))
    if upload.size is not None and upload.size > MAX_BYTES:
        raise ValidationError(_("The file is larger than 100 MB."))
    if upload.size == 0:
        raise ValidationError(_("The file is empty."))
    head = _read_head(upload)
    if head.lstrip().startswith((b"<svg", b"<?xml")):
        raise ValidationError(_("SVG images are not accepted; use PNG or JPEG."))
    dimensions = None
    if _looks_like_image(head):
        _check_kind_size(upload, "image")
        content, extension, content_type, dimensions = _reencode_image(upload)
        kind, source = "image", content
    else:
        sniffed = sniff_kind(head)
        if sniffed is None:
            raise ValidationError(
                _("This file type is not supported. Use an image (JPEG, PNG, GIF, WebP), a video (MP4, WebM) or a PDF.")
            )
        kind, extension, content_type = sniffed
        _check_kind_size(upload, kind)
        upload.seek(0)
        source = File(upload)  # storage.save copies it in chunks
    if expected_kind and kind != expected_kind:
        labels = {"image": _("an image"), "video": _("a video"), "file": _("a PDF file")}
        raise ValidationError(_("This slot needs %(kind)s.") % {"kind": labels.get(expected_kind, expected_kind)})
    name = default_storage.save(f"media/{organization.id}/{secrets.token_hex(12)}.{extension}", source)
    size = default_storage.size(name)
    warnings = []
    if dimensions:
        warning = image_size_warning(*dimensions, size)  # what the phones will download
        if warning:
            warnings.append(warning)
    stored = StoredMedia(url=public_url(name), kind=kind, content_type=content_type, size=size, name=name,
                         width=dimensions[0] if dimensions else None, height=dimensions[1] if dimensions else None,
                         warnings=tuple(warnings))
    audit_record("media.uploaded", request=request, organization=organization, actor=actor, target_type="media",
                 target_id=name.rsplit("/", 1)[-1], target_label=name,
                 details={"purpose": "campaign", "kind": kind, "content_type": content_type, "size": stored.size,
                          "original_name": str(getattr(upload, "name", ""))[:200]})
    return stored


def display_url(url):
    """The URL to show our own stored media from in the console: relative to this site, so a
    preview works whatever host the console is reached on (carriers get the public URL)."""
    base = settings.PUBLIC_BASE_URL.rstrip("/") + "/"
    if isinstance(url, str) and url.startswith(base + settings.MEDIA_URL.lstrip("/")):
        return "/" + url[len(base):]
    return url


def is_own_media_url(url: str, organization) -> bool:
    """Whether ``url`` points at this organization's stored media (used to show thumbnails)."""
    prefix = public_url(f"media/{organization.id}/")
    return isinstance(url, str) and url.startswith(prefix)


def _reach_label(reason: str) -> str:
    if "loopback" in reason:
        return _("a loopback address, which means this computer")
    if "link-local" in reason:
        return _("a link-local address")
    if any(word in reason for word in ("private", "unique-local", "site-local", "CGNAT")):
        return _("a private network address")
    if reason == "local name":
        return _("a name known only inside a local network")
    return _("an address that is not public")


def media_urls(document) -> list[tuple[str, str]]:
    """(field path, URL) of every picture, video or file a content document makes phones fetch."""
    if not isinstance(document, dict):
        return []
    found = []

    def add(path, media):
        if isinstance(media, dict):
            for key in ("url", "thumbnail_url"):
                if isinstance(media.get(key), str) and media[key].strip():
                    found.append((f"{path}.{key}", media[key].strip()))

    add("media", document.get("media"))
    if isinstance(document.get("card"), dict):
        add("card.media", document["card"].get("media"))
    carousel = document.get("carousel")
    if isinstance(carousel, dict) and isinstance(carousel.get("cards"), list):
        for index, card in enumerate(carousel["cards"]):
            if isinstance(card, dict):
                add(f"carousel.cards[{index}].media", card.get("media"))
    return found


def unreachable_media(document) -> list[dict]:
    """Warnings for media a carrier cannot fetch: a URL on a loopback, private or link-local address
    or a local name (the classification is the egress guard's). Carriers download the media from
    the internet; such a message would arrive without its picture."""
    warnings = []
    for path, url in media_urls(document):
        reason = public_reach_problem(url)
        if reason:
            host = urlsplit(url).hostname or url
            warnings.append({"path": path, "url": url, "reason": reason, "message": _(
                "Carriers cannot fetch the media at %(host)s: it is %(what)s, and carriers download media from "
                "the internet. Use a public URL, or have an admin set PUBLIC_BASE_URL to the console's public "
                "address and upload the file again."
            ) % {"host": host, "what": _reach_label(reason)}})
    return warnings
