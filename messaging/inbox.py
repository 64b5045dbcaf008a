"""Two-way conversations: inbound messages become conversation messages, operators answer.

Inbound: ``receipts.events_apply`` sends ``signals.inbound_received`` with each inbound event once,
inside its transaction; ``inbound_apply`` maps each event to its organization and official account
through the gateway account it arrived for (``event.gateway_id``), finds or creates the contact and
the conversation per (official account, contact), stores the message (unique per provider event),
credits the campaign the person answered (replied / clicked, once per person and campaign), acts
on opt-out keywords and the opt-out postback, and queues the download of a file.

Outbound: ``inbox_reply`` sends an operator's answer through ``messaging.services.message_send``
(the priority lane; +Message when the number can receive it, SMS otherwise) and records it in the
thread, where its Delivery's status shows. ``conversation_open`` marks a thread read and queues the
RBM read receipts for the person's +Message messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import logging
import mimetypes
import os
import urllib.request
from collections import Counter
from datetime import timedelta
from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import OfficialAccount
from campaigns.models import Campaign, Classification, Contact
from core.phone import normalize_mobile
from messaging.counters import counters_add
from messaging.models import (
    CampaignEngagement,
    Channel,
    Conversation,
    ConversationMessage,
    ConversationStatus,
    Delivery,
    DeliveryStatus,
    EngagementKind,
    MediaStatus,
    MessageDirection,
    MessageKind,
    Metric,
)
from messaging.signals import inbound_received

logger = logging.getLogger(__name__)

ATTRIBUTION_WINDOW = timedelta(days=7)  # a reply within a week of a campaign message counts for it
MEDIA_MAX_BYTES = 100 * 1024 * 1024  # +Message files are at most 100 MB
MEDIA_TIMEOUT_SECONDS = 30

KIND_BY_EVENT = {
    "inbound_text": MessageKind.TEXT,
    "inbound_postback": MessageKind.POSTBACK,
    "inbound_location": MessageKind.LOCATION,
    "inbound_file": MessageKind.FILE,
}


# -- inbound -------------------------------------------------------------------------------------


@receiver(inbound_received, dispatch_uid="inbox_inbound_received")
def _on_inbound(sender, events, **kwargs):
    inbound_apply(events)


def _accounts_by_gateway(gateway_ids) -> dict[int, list[OfficialAccount]]:
    found: dict[int, list[OfficialAccount]] = {}
    accounts = OfficialAccount.objects.filter(
        Q(rcs_gateway_id__in=gateway_ids) | Q(sms_gateway_id__in=gateway_ids)
    ).select_related("organization").order_by("id")
    for account in accounts:
        for gateway_id in {account.rcs_gateway_id, account.sms_gateway_id}:
            if gateway_id in gateway_ids:
                found.setdefault(gateway_id, []).append(account)
    return found


def _pick_account(candidates: list[OfficialAccount], phone: str) -> OfficialAccount:
    """Several accounts may share a gateway: the one that last wrote to this number answers."""
    if len(candidates) == 1:
        return candidates[0]
    ids = [account.id for account in candidates]
    last = (
        Delivery.objects.filter(contact__phone=phone, contact__organization_id=candidates[0].organization_id)
        .filter(Q(official_account_id__in=ids) | Q(campaign__official_account_id__in=ids))
        .order_by("-id")
        .values_list("official_account_id", "campaign__official_account_id")
        .first()
    )
    if last:
        chosen = last[0] or last[1]
        for account in candidates:
            if account.id == chosen:
                return account
    return candidates[0]


def _attributed_campaign(contact: Contact, account: OfficialAccount, at):
    """The campaign whose message the person most recently got from this account, within a week."""
    return (
        Delivery.objects.filter(
            contact=contact,
            campaign__isnull=False,
            campaign__official_account=account,
            status__in=[DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ],
            sent_at__gte=at - ATTRIBUTION_WINDOW,
        )
        .order_by("-sent_at", "-id")
        .values_list("campaign_id", flat=True)
        .first()
    )


def engagement_record(campaign_id: int, contact_id: int, kind: str, channel: str = "") -> bool:
    """Count a person's first click or reply to a campaign. Returns True if it was the first."""
    try:
        with transaction.atomic():
            CampaignEngagement.objects.create(campaign_id=campaign_id, contact_id=contact_id, kind=kind)
    except IntegrityError:
        return False
    metric = Metric.CLICKED if kind == EngagementKind.CLICKED else Metric.REPLIED
    counters_add(Counter({(campaign_id, channel or "", metric, ""): 1}))
    return True


def inbound_apply(events) -> list[ConversationMessage]:
    """Store inbound events as conversation messages (each event once). See the module docstring."""
    from campaigns.optout import OptOutMethod, contact_opt_out, is_opt_out_keyword, is_opt_out_postback

    opt_out = (contact_opt_out, OptOutMethod, is_opt_out_keyword, is_opt_out_postback)
    gateway_ids = {event.gateway_id for event in events if event.gateway_id}
    accounts = _accounts_by_gateway(gateway_ids) if gateway_ids else {}
    stored = []
    for event in events:
        try:
            with transaction.atomic():  # one bad event must not hold back the receipts batch
                message = _inbound_one(event, accounts, opt_out)
        except Exception:
            logger.exception("inbound %s:%s could not be stored", event.provider, event.event_id)
            continue
        if message is not None:
            stored.append(message)
    return stored


def _inbound_one(event, accounts, opt_out) -> ConversationMessage | None:
    contact_opt_out, OptOutMethod, is_opt_out_keyword, is_opt_out_postback = opt_out
    candidates = accounts.get(event.gateway_id)
    if not candidates:
        logger.warning("inbound %s:%s for gateway %s: no official account uses it",
                       event.provider, event.event_id, event.gateway_id)
        return None
    try:
        phone = normalize_mobile(event.phone)
    except ValidationError:
        logger.warning("inbound %s:%s from a number that is not a Japanese mobile", event.provider, event.event_id)
        return None
    account = _pick_account(candidates, phone)
    organization = account.organization
    at = event.occurred_at or timezone.now()
    if ConversationMessage.objects.filter(provider=event.provider, provider_event_id=event.event_id[:200]).exists():
        return None
    contact, _created = Contact.objects.get_or_create(organization=organization, phone=phone)
    conversation, _created = Conversation.objects.get_or_create(
        official_account=account, contact=contact, defaults={"organization": organization}
    )
    campaign_id = _attributed_campaign(contact, account, at)
    raw = event.raw or {}
    message = ConversationMessage.objects.create(
        conversation=conversation,
        direction=MessageDirection.INBOUND,
        kind=KIND_BY_EVENT.get(event.kind, MessageKind.TEXT),
        channel=event.channel if event.channel in Channel.values else "",
        text=event.text or "",
        postback=(event.postback or "")[:2048],
        latitude=event.latitude,
        longitude=event.longitude,
        file_url=(event.file_url or "")[:2048],
        file_mime=(event.file_mime or "")[:100],
        media_status=MediaStatus.PENDING if event.file_url else MediaStatus.NONE,
        provider=event.provider,
        provider_event_id=event.event_id[:200],
        provider_message_id=str(raw.get("messageId", "") if event.provider == "rbm" else "")[:200],
        campaign_id=campaign_id,
        created_at=at,
    )
    Conversation.objects.filter(pk=conversation.pk).update(
        unread_count=F("unread_count") + 1,
        last_message_at=at,
        last_inbound_at=at,
        status=ConversationStatus.OPEN,
        **({"last_campaign_id": campaign_id} if campaign_id else {}),
    )
    if campaign_id:
        kind = EngagementKind.CLICKED if event.kind == "inbound_postback" else EngagementKind.REPLIED
        engagement_record(campaign_id, contact.pk, kind, message.channel)
    if event.kind == "inbound_text" and is_opt_out_keyword(event.text):
        contact_opt_out(contact, OptOutMethod.KEYWORD, event.text.strip()[:100], official_account=account)
    elif event.kind == "inbound_postback" and is_opt_out_postback(event.postback):
        contact_opt_out(contact, OptOutMethod.POSTBACK, event.postback[:100], official_account=account)
    if message.media_status == MediaStatus.PENDING:
        transaction.on_commit(lambda pk=message.pk: fetch_inbound_media.delay(pk))
    return message


# -- media ---------------------------------------------------------------------------------------


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
    from PIL import Image, UnidentifiedImageError

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


@shared_task(acks_late=True)
def fetch_inbound_media(message_id: int) -> str:
    return inbound_media_fetch(message_id)


# -- read receipts -------------------------------------------------------------------------------


def read_receipts_send(conversation_id: int) -> int:
    """Send RBM READ events for the person's unacknowledged +Message messages. Returns how many."""
    from messaging.gateways import gateway_for

    conversation = Conversation.objects.select_related("official_account__rcs_gateway", "contact").get(
        pk=conversation_id
    )
    gateway_account = conversation.official_account.rcs_gateway
    if gateway_account is None or gateway_account.kind != "rbm":
        return 0
    pending = list(
        ConversationMessage.objects.filter(
            conversation=conversation, direction=MessageDirection.INBOUND, provider="rbm",
            read_receipt_sent_at__isnull=True,
        ).exclude(provider_message_id="").values_list("id", "provider_message_id")
    )
    if not pending:
        return 0
    gateway = gateway_for(gateway_account)
    phone = conversation.contact.phone

    async def send_all():
        import aiohttp

        async with aiohttp.ClientSession() as session:
            results = []
            for message_pk, provider_message_id in pending:
                try:
                    ok = await gateway.send_read_receipt(session, phone, provider_message_id)
                except Exception as error:  # noqa: BLE001 - one failure must not stop the others
                    logger.warning("read receipt for message %s failed: %s", message_pk, error)
                    ok = False
                results.append((message_pk, ok))
            return results

    results = asyncio.run(send_all())
    done = [message_pk for message_pk, ok in results if ok]
    ConversationMessage.objects.filter(pk__in=done, read_receipt_sent_at__isnull=True).update(
        read_receipt_sent_at=timezone.now()
    )
    return len(done)


@shared_task(acks_late=True)
def send_read_receipts(conversation_id: int) -> int:
    return read_receipts_send(conversation_id)


# -- operators -----------------------------------------------------------------------------------


def conversation_open(conversation: Conversation, user) -> int:
    """An operator looks at the thread: mark it read and send the read receipts. Returns unread before."""
    now = timezone.now()
    with transaction.atomic():
        marked = ConversationMessage.objects.filter(
            conversation=conversation, direction=MessageDirection.INBOUND, read_at__isnull=True
        ).update(read_at=now)
        Conversation.objects.filter(pk=conversation.pk).update(unread_count=0)
        conversation.unread_count = 0
        if marked:
            transaction.on_commit(
                lambda: send_read_receipts.apply_async((conversation.pk,), queue="priority")
            )
    return marked


def conversation_record_outbound(account, contact, delivery, text: str, user=None) -> ConversationMessage:
    conversation, _created = Conversation.objects.get_or_create(
        official_account=account, contact=contact, defaults={"organization_id": contact.organization_id}
    )
    now = timezone.now()
    message = ConversationMessage.objects.create(
        conversation=conversation, direction=MessageDirection.OUTBOUND, kind=MessageKind.TEXT, text=text,
        delivery=delivery, sent_by=user if user is not None and user.is_authenticated else None, created_at=now,
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=now)
    return message


def inbox_reply(conversation: Conversation, user, text: str, request=None) -> ConversationMessage:
    """Answer in the thread: +Message when the number can receive it, SMS otherwise (the engine decides)."""
    from audit.services import audit_record
    from messaging.services import message_send

    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": [_("Write a reply first.")]})
    account = conversation.official_account
    with transaction.atomic():
        delivery = message_send(
            organization=conversation.organization,
            official_account=account,
            phone=conversation.contact.phone,
            content={"text": text},
            sms_text=text,
            classification=Classification.TRANSACTION,
            client_reference=f"inbox:{conversation.pk}",
        )
        message = conversation_record_outbound(account, conversation.contact, delivery, text, user)
        audit_record("inbox.replied", request=request, organization=conversation.organization, actor=user,
                     target=conversation.contact, target_label=conversation.contact.phone,
                     details={"conversation_id": conversation.pk, "delivery": str(delivery.uuid)})
    return message


def conversation_assign(conversation: Conversation, user) -> Conversation:
    Conversation.objects.filter(pk=conversation.pk).update(assigned_to=user)
    conversation.assigned_to = user
    return conversation


def conversation_set_status(conversation: Conversation, status: str) -> Conversation:
    if status not in ConversationStatus.values:
        raise ValidationError({"status": [_("Unknown status.")]})
    Conversation.objects.filter(pk=conversation.pk).update(status=status)
    conversation.status = status
    return conversation


# -- tracked links -------------------------------------------------------------------------------


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _link_signature(campaign_id: int, contact_id: int, url: str) -> str:
    import base64

    key = hashlib.sha256(f"messaging.links:{settings.SECRET_KEY}".encode()).digest()
    digest = hmac.new(key, f"{campaign_id}.{contact_id}.{url}".encode(), hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def tracked_link_url(campaign_id: int, contact_id: int, url: str) -> str:
    """The console URL that records a click on ``url`` and then redirects to it."""
    from urllib.parse import quote

    token = f"{_b36(campaign_id)}.{_b36(contact_id)}.{_link_signature(campaign_id, contact_id, url)}"
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/messaging/r/{token}/?u={quote(url, safe='')}"


def tracked_link_target(token: str, url: str) -> tuple[Campaign, int, str] | None:
    """(campaign, contact id, url) when the token is ours and ``url`` is one of the campaign's
    http/https button targets; None otherwise (no open redirect)."""
    from django.utils.crypto import constant_time_compare

    from core.personalize import personalize_text
    from core.rich_content import iter_urls

    try:
        campaign_part, contact_part, signature = token.split(".")
        campaign_id, contact_id = int(campaign_part, 36), int(contact_part, 36)
    except (ValueError, AttributeError):
        return None
    if not constant_time_compare(signature, _link_signature(campaign_id, contact_id, url)):
        return None
    if urlsplit(url).scheme not in ("http", "https"):
        return None
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    contact = Contact.objects.filter(pk=contact_id).first()
    if campaign is None or contact is None or contact.organization_id != campaign.organization_id:
        return None
    try:
        targets = set(iter_urls(campaign.content or {}))
    except (AttributeError, TypeError, KeyError):
        targets = set()
    personalised = {personalize_text(target, contact.name, contact.attributes or {}) for target in targets}
    if url not in targets and url not in personalised:
        return None
    return campaign, contact_id, url


def link_click_record(campaign: Campaign, contact_id: int) -> bool:
    channel = (
        Delivery.objects.filter(campaign=campaign, contact_id=contact_id).values_list("channel", flat=True).first()
        or ""
    )
    return engagement_record(campaign.pk, contact_id, EngagementKind.CLICKED, channel)


def rewrite_tracked_links(document: dict, campaign_id: int, contact_id: int) -> dict:
    """A copy of a (personalised) rich-content document whose http/https button and chip URLs go
    through ``tracked_link_url``: what the engine sends so that clicks count in the campaign's stats.
    The redirect only ever leads to a URL that is in the campaign's content."""
    import copy

    result = copy.deepcopy(document)
    cards = []
    if isinstance(result.get("card"), dict):
        cards.append(result["card"])
    if isinstance(result.get("carousel"), dict):
        cards.extend(card for card in result["carousel"].get("cards") or [] if isinstance(card, dict))
    suggestions = list(result.get("chips") or [])
    for card in cards:
        suggestions.extend(card.get("buttons") or [])
    for item in suggestions:
        if isinstance(item, dict) and item.get("type") == "open_url":
            url = item.get("url") or ""
            if urlsplit(url).scheme in ("http", "https"):
                item["url"] = tracked_link_url(campaign_id, contact_id, url)
    return result
