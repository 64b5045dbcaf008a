"""Files people send us (photos, PDFs …): downloaded once, size-limited, into the default storage.

An inbound file arrives as a carrier URL (``ConversationMessage.file_url``, media status PENDING);
the inbox queues ``messaging.tasks.fetch_inbound_media`` for it, which calls ``inbound_media_fetch``
here. Images are re-encoded with Pillow before they are ever shown inline; anything else is stored
as an opaque download.
"""

from __future__ import annotations

import hashlib
import io
import logging
import mimetypes
import os
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image, UnidentifiedImageError

from messaging.models import ConversationMessage, MediaStatus

logger = logging.getLogger(__name__)

MEDIA_MAX_BYTES = 100 * 1024 * 1024  # +Message files are at most 100 MB
MEDIA_TIMEOUT_SECONDS = 30


class MediaTooLarge(Exception):
    pass


def _download(url: str, limit: int) -> tuple[bytes, str]:
    request = urllib.request.Request(url, headers={"User-Agent": "plusmessage-console/1"})
    with urllib.request.urlopen(request, timeout=MEDIA_TIMEOUT_SECONDS) as response:  # noqa: S310 - http(s) only
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > limit:
            raise MediaTooLarge
        buffer = io.BytesIO()
        while True:
            chunk = response.read(64 * 1024)
            if not chunk:
                break
            buffer.write(chunk)
            if buffer.tell() > limit:
                raise MediaTooLarge
        return buffer.getvalue(), response.headers.get_content_type()


def _safe_image(data: bytes) -> tuple[bytes, str, str] | None:
    """Re-encode an image with Pillow (what we show inline); None if the bytes are no image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            output = io.BytesIO()
            if image.mode in ("RGBA", "LA", "P"):
                image.convert("RGBA").save(output, "PNG")
                return output.getvalue(), "image/png", "png"
            image.convert("RGB").save(output, "JPEG", quality=90)
            return output.getvalue(), "image/jpeg", "jpg"
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def inbound_media_fetch(message_id: int) -> str:
    """Download an inbound file (size-limited) into the default storage. Returns the media status."""
    message = ConversationMessage.objects.filter(pk=message_id, media_status=MediaStatus.PENDING).first()
    if message is None:
        return "nothing"
    if urlsplit(message.file_url).scheme not in ("http", "https"):
        ConversationMessage.objects.filter(pk=message.pk).update(media_status=MediaStatus.FAILED)
        return MediaStatus.FAILED
    limit = int(getattr(settings, "INBOX_MEDIA_MAX_BYTES", 0) or os.environ.get("INBOX_MEDIA_MAX_BYTES") or MEDIA_MAX_BYTES)
    try:
        data, served_type = _download(message.file_url, limit)
    except MediaTooLarge:
        ConversationMessage.objects.filter(pk=message.pk).update(media_status=MediaStatus.TOO_LARGE)
        return MediaStatus.TOO_LARGE
    except (OSError, ValueError) as error:
        logger.warning("inbound file %s: download failed: %s", message.pk, error)
        ConversationMessage.objects.filter(pk=message.pk).update(media_status=MediaStatus.FAILED)
        return MediaStatus.FAILED
    image = _safe_image(data)
    if image is not None:
        data, mime, extension = image
    else:
        mime = "application/octet-stream"  # shown as a download, never inline
        extension = (mimetypes.guess_extension(message.file_mime or served_type or "") or ".bin").lstrip(".")
    name = f"{hashlib.sha256(data).hexdigest()[:24]}.{extension}"
    message.file.save(name, ContentFile(data), save=False)
    ConversationMessage.objects.filter(pk=message.pk).update(
        file=message.file.name, media_status=MediaStatus.STORED, file_mime=mime
    )
    return MediaStatus.STORED
