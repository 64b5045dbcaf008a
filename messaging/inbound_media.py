"""Files people send us (photos, PDFs …): downloaded once, size-limited, into private storage.

An inbound file arrives as a carrier URL (``ConversationMessage.file_url``, media status PENDING);
the inbox queues ``messaging.tasks.fetch_inbound_media`` for it, which calls ``inbound_media_fetch``
here. Images are re-encoded with Pillow before they are ever shown inline; anything else is stored
as opaque bytes (the declared type only in ``file_mime``) and offered as a download. Every file is
kept in private storage (``core.private_files``) under a random name and leaves only through the
inbox's ``message_media`` view.

The URL comes from a carrier payload, so it is fetched through the egress guard
(``core.egress.fetch``: http(s) only, no internal address, no redirect, timeouts, at most the media
limit read) and only from the hosts the gateway account the message came in through lists
(``GatewayAccount.media_allowed_hosts``: its ``media_hosts``, or the host of its base URL). A URL
elsewhere, or refused by the guard, marks the media failed with the reason and sends nothing.
"""

from __future__ import annotations

import io
import logging
import os

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import translation
from PIL import Image, UnidentifiedImageError

from core.egress import EgressProblem, EgressRefused, fetch
from messaging.models import ConversationMessage, MediaStatus

logger = logging.getLogger(__name__)

MEDIA_MAX_BYTES = 100 * 1024 * 1024  # +Message files are at most 100 MB
MEDIA_TIMEOUT_SECONDS = 30


class MediaTooLarge(Exception):
    pass


class MediaRefused(Exception):
    """The download did not give a file: ``str()`` is the reason kept on the message."""


def _untranslated(problem: EgressProblem) -> str:
    """The guard's user message as its msgid: stored so, translated when shown."""
    with translation.override(None):
        return str(problem)


def _download(url: str, limit: int, allowed_hosts: list[str]) -> tuple[bytes, str]:
    """(bytes, served type) of one GET through the egress guard, from ``allowed_hosts`` only."""
    try:
        response = fetch(
            "GET", url, headers={"User-Agent": "plusmessage-console/1"}, timeout=MEDIA_TIMEOUT_SECONDS,
            max_bytes=limit, allowed_hosts=allowed_hosts,
        )
    except EgressProblem as error:
        raise MediaRefused(_untranslated(error)) from error
    if not 200 <= response.status < 300:
        raise MediaRefused(f"HTTP {response.status}")
    if response.truncated:
        raise MediaTooLarge
    served_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return response.body, served_type


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
    """Download an inbound file (size-limited) into private storage. Returns the media status."""
    message = (
        ConversationMessage.objects.filter(pk=message_id, media_status=MediaStatus.PENDING)
        .select_related("gateway")
        .first()
    )
    if message is None:
        return "nothing"
    limit = int(getattr(settings, "INBOX_MEDIA_MAX_BYTES", 0) or os.environ.get("INBOX_MEDIA_MAX_BYTES") or MEDIA_MAX_BYTES)
    allowed_hosts = message.gateway.media_allowed_hosts() if message.gateway else []
    try:
        if not allowed_hosts:  # no gateway account to vouch for the host: nothing is fetched
            raise MediaRefused(_untranslated(EgressRefused("no gateway account")))
        data, served_type = _download(message.file_url, limit, allowed_hosts)
    except MediaTooLarge:
        ConversationMessage.objects.filter(pk=message.pk).update(media_status=MediaStatus.TOO_LARGE)
        return MediaStatus.TOO_LARGE
    except MediaRefused as error:
        logger.warning("inbound file %s: download failed: %s", message.pk, error)
        ConversationMessage.objects.filter(pk=message.pk).update(
            media_status=MediaStatus.FAILED, media_error=str(error)[:200]
        )
        return MediaStatus.FAILED
    image = _safe_image(data)
    if image is not None:
        data, mime, _extension = image
    else:
        # Opaque bytes: the type the sender declared is kept here only, never in the file's name.
        mime = (message.file_mime or served_type or "application/octet-stream")[:100]
    message.file.save("inbound", ContentFile(data), save=False)  # a random name (inbound_file_name)
    ConversationMessage.objects.filter(pk=message.pk).update(
        file=message.file.name, media_status=MediaStatus.STORED, file_mime=mime, file_is_image=image is not None
    )
    return MediaStatus.STORED
