"""Two-way conversations: inbound messages become conversation messages, operators answer.

Inbound: ``receipts.events_apply`` sends ``signals.inbound_received`` with each inbound event once,
inside its transaction; ``inbound_apply`` (its receiver, connected in MessagingConfig.ready) maps
each event to its organization and official account through the gateway account it arrived for
(``event.gateway_id``), finds or creates the contact and the conversation per (official account,
contact), stores the message (unique per provider event), credits the campaign the person answered
(replied / clicked, once per person and campaign), acts on opt-out keywords and the opt-out postback
and on the organization's opt-in keyword (a consent record whose evidence is this message, and one
transactional confirmation, ``opt_in_confirmation_send``), and queues the download of a file (messaging.inbound_media).

Outbound: ``inbox_reply`` sends an operator's answer through ``messaging.services.message_send``
(the priority lane; +Message when the number can receive it, SMS otherwise) and records it in the
thread, where its Delivery's status shows. ``conversation_open`` marks a thread read and queues the
RBM read receipts for the person's +Message messages.

Team inbox: a conversation waits for an answer from the person's first message that nobody in the
team has answered (``Conversation.waiting_since``; messages the product answers by itself — opt-out
and opt-in keywords — do not start a wait); a member's reply or "done" ends it, and
``oldest_waiting`` is what the dashboard and the inbox show. ``conversation_assign`` notifies the
member a conversation is newly assigned to (``accounts.notifications``).

Opt-out confirmation: whoever opts a person out (a keyword here, the opt-out link page, the console,
the API) goes through ``campaigns.optout.contact_opt_out``, which sends
``campaigns.signals.contact_opted_out``; ``on_contact_opted_out`` answers it with one short
transactional confirmation, recorded in the thread like any other answer.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import aiohttp
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import NotificationKind, OfficialAccount
from accounts.notifications import notification_create
from audit.services import audit_record
from campaigns.models import Classification, Contact
from campaigns.optout import (
    OPT_IN_CONFIRMATION_TEXT,
    OptOutMethod,
    contact_opt_in_by_keyword,
    contact_opt_out,
    is_opt_in_keyword,
    is_opt_out_keyword,
    is_opt_out_postback,
)
from core.phone import national_format, normalize_mobile
from messaging import tasks
from messaging.engagement import engagement_record
from messaging.gateways import gateway_for
from messaging.models import (
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
)
from messaging.services import message_send
from messaging.signals import conversation_message_received

logger = logging.getLogger(__name__)

ATTRIBUTION_WINDOW = timedelta(days=7)  # a reply within a week of a campaign message counts for it

KIND_BY_EVENT = {
    "inbound_text": MessageKind.TEXT,
    "inbound_postback": MessageKind.POSTBACK,
    "inbound_location": MessageKind.LOCATION,
    "inbound_file": MessageKind.FILE,
}

# The confirmation the person receives (customer-facing content, always in Japanese).
CONFIRMATION_TEXT = "【{name}】配信停止を受け付けました。今後、広告・お知らせは送信されません。"


# -- inbound -------------------------------------------------------------------------------------


def on_inbound_received(sender, events, **kwargs):
    """``messaging.signals.inbound_received`` receiver (connected in MessagingConfig.ready)."""
    inbound_apply(events)


def _accounts_by_gateway(gateway_ids) -> dict[int, list[OfficialAccount]]:
    found: dict[int, list[OfficialAccount]] = {}
    # A reply (「停止」 too) to an SMS sent through the backup gateway comes in through the backup.
    accounts = OfficialAccount.objects.filter(
        Q(rcs_gateway_id__in=gateway_ids) | Q(sms_gateway_id__in=gateway_ids) | Q(backup_sms_gateway_id__in=gateway_ids)
    ).select_related("organization").order_by("id")
    for account in accounts:
        for gateway_id in {account.rcs_gateway_id, account.sms_gateway_id, account.backup_sms_gateway_id}:
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


def inbound_apply(events) -> list[ConversationMessage]:
    """Store inbound events as conversation messages (each event once). See the module docstring."""
    gateway_ids = {event.gateway_id for event in events if event.gateway_id}
    accounts = _accounts_by_gateway(gateway_ids) if gateway_ids else {}
    stored = []
    for event in events:
        try:
            with transaction.atomic():  # one bad event must not hold back the receipts batch
                message = _inbound_one(event, accounts)
        except Exception:
            logger.exception("inbound %s:%s could not be stored", event.provider, event.event_id)
            continue
        if message is not None:
            stored.append(message)
    return stored


def _inbound_one(event, accounts) -> ConversationMessage | None:
    candidates = accounts.get(event.gateway_id)
    if not candidates:
        logger.warning("inbound %s:%s for gateway %s: no official account uses it",
                       event.provider, event.event_id, event.gateway_id)
        return None
    try:
        phone = normalize_mobile(event.phone)
    except ValidationError:
        # The number is written as core.logs writes every number: a salted hash (the text never is).
        logger.warning("inbound %s:%s from %s, not a Japanese mobile", event.provider, event.event_id, event.phone)
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
    # What the product answers by itself (opt-out, opt-in keyword) leaves nobody waiting for the team.
    answered_automatically = (
        (event.kind == "inbound_text" and (is_opt_out_keyword(event.text) or is_opt_in_keyword(organization, event.text)))
        or (event.kind == "inbound_postback" and is_opt_out_postback(event.postback))
    )
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
        gateway_id=event.gateway_id,
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
        **({} if answered_automatically else {"waiting_since": Coalesce(F("waiting_since"), Value(at))}),
    )
    if campaign_id:
        kind = EngagementKind.CLICKED if event.kind == "inbound_postback" else EngagementKind.REPLIED
        engagement_record(campaign_id, contact.pk, kind, message.channel)
    handled = ""
    if event.kind == "inbound_text" and is_opt_out_keyword(event.text):
        handled = "opt_out"
        contact_opt_out(contact, OptOutMethod.KEYWORD, event.text.strip()[:100], official_account=account)
    elif event.kind == "inbound_postback" and is_opt_out_postback(event.postback):
        handled = "opt_out"
        contact_opt_out(contact, OptOutMethod.POSTBACK, event.postback[:100], official_account=account)
    elif event.kind == "inbound_text" and is_opt_in_keyword(organization, event.text):
        handled = "opt_in"
        consent = contact_opt_in_by_keyword(
            contact,
            source=f"reply keyword to {account.display_name}"[:300],
            evidence=(f"inbound {event.provider} message {event.event_id} (conversation message {message.pk}, "
                      f"{message.channel or '-'}) at {at.isoformat()}: {event.text}")[:2000],
        )
        if consent is not None:
            opt_in_confirmation_send(contact, account)
    # Keyword rules and the away message (messaging.automation) act after the opt-out and opt-in
    # keywords, which always win.
    conversation_message_received.send(sender=ConversationMessage, message=message, conversation=conversation,
                                       contact=contact, account=account, handled=handled)
    if message.media_status == MediaStatus.PENDING:
        transaction.on_commit(lambda pk=message.pk: tasks.fetch_inbound_media.delay(pk))
    return message


# -- read receipts -------------------------------------------------------------------------------


def read_receipts_send(conversation_id: int) -> int:
    """Send RBM READ events for the person's unacknowledged +Message messages. Returns how many."""
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
                lambda: tasks.send_read_receipts.apply_async((conversation.pk,), queue="priority")
            )
    return marked


def conversation_record_outbound(account, contact, delivery, text: str, user=None,
                                 automation: str = "") -> ConversationMessage:
    conversation, _created = Conversation.objects.get_or_create(
        official_account=account, contact=contact, defaults={"organization_id": contact.organization_id}
    )
    now = timezone.now()
    message = ConversationMessage.objects.create(
        conversation=conversation, direction=MessageDirection.OUTBOUND, kind=MessageKind.TEXT, text=text,
        delivery=delivery, sent_by=user if user is not None and user.is_authenticated else None, created_at=now,
        automation=automation,
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=now)
    return message


def conversation_answer(conversation: Conversation, text: str, *, user=None, automation: str = "") -> ConversationMessage:
    """The one send path of an answer in a thread, an operator's or the inbox's own (``automation``:
    a keyword rule or the away message): a conversational reply through ``message_send`` (+Message
    when the number can receive it, SMS otherwise; the send rules of a transactional message),
    recorded in the thread."""
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
        return conversation_record_outbound(account, conversation.contact, delivery, text, user, automation)


def inbox_reply(conversation: Conversation, user, text: str, request=None) -> ConversationMessage:
    """An operator answers in the thread (``conversation_answer``), audited; the person no longer waits
    (an automatic answer leaves the wait running)."""
    with transaction.atomic():
        message = conversation_answer(conversation, text, user=user)
        Conversation.objects.filter(pk=conversation.pk).update(waiting_since=None)  # a member answered
        conversation.waiting_since = None
        audit_record("inbox.replied", request=request, organization=conversation.organization, actor=user,
                     target=conversation.contact, target_label=conversation.contact.phone,
                     details={"conversation_id": conversation.pk, "delivery": str(message.delivery.uuid)})
    return message


def conversation_assign(conversation: Conversation, user, actor=None) -> Conversation:
    """Assign the conversation to ``user`` (None: unassign). The member it is newly assigned to is
    notified (accounts.notifications: the console's bell, and an e-mail if they chose it), unless
    they assigned it to themselves; ``actor`` is who did it (None: the product, e.g. a rule)."""
    with transaction.atomic():
        rows = Conversation.objects.filter(pk=conversation.pk)
        rows = rows.exclude(assigned_to=user) if user is not None else rows.filter(assigned_to__isnull=False)
        changed = rows.update(assigned_to=user)
        conversation.assigned_to = user
        if changed and user is not None and (actor is None or actor.pk != user.pk):
            contact = conversation.contact
            notification_create(
                conversation.organization, user, NotificationKind.CONVERSATION_ASSIGNED,
                subject=contact.name or national_format(contact.phone),
                url=reverse("messaging:inbox_conversation", args=[conversation.pk]),
                actor=actor,
            )
    return conversation


def conversation_set_status(conversation: Conversation, status: str) -> Conversation:
    """Open or done; "done" also ends the wait for an answer (nothing is expected of the team)."""
    if status not in ConversationStatus.values:
        raise ValidationError({"status": [_("Unknown status.")]})
    extra = {"waiting_since": None} if status == ConversationStatus.DONE else {}
    Conversation.objects.filter(pk=conversation.pk).update(status=status, **extra)
    conversation.status = status
    if extra:
        conversation.waiting_since = None
    return conversation


def oldest_waiting(organization) -> Conversation | None:
    """The open conversation whose person has waited longest for the team's answer, or None."""
    return (
        Conversation.objects.filter(
            organization=organization, status=ConversationStatus.OPEN, waiting_since__isnull=False
        )
        .select_related("contact")
        .order_by("waiting_since", "id")
        .first()
    )


# -- opt-out confirmation ------------------------------------------------------------------------


def on_contact_opted_out(sender, contact, official_account=None, confirm=True, **kwargs):
    """``campaigns.signals.contact_opted_out`` receiver (connected in MessagingConfig.ready).

    The signal comes only from the call that really opted the person out, inside its transaction,
    so the confirmation goes out once and only if the opt-out commits."""
    if confirm:
        opt_out_confirmation_send(contact, official_account)


def _confirmation_account(contact: Contact, official_account=None) -> OfficialAccount | None:
    if official_account is not None:
        return official_account
    last = (
        Delivery.objects.filter(contact_id=contact.pk)
        .select_related("campaign__official_account", "official_account")
        .order_by("-id")
        .first()
    )
    if last is not None:
        return last.official_account or (last.campaign.official_account if last.campaign_id else None)
    for account in OfficialAccount.objects.filter(organization_id=contact.organization_id).order_by("id"):
        if account.can_send:
            return account
    return None


def opt_out_confirmation_send(contact: Contact, official_account=None) -> ConversationMessage | None:
    """Send the person the opt-out confirmation and record it in their thread.

    It goes through ``official_account`` (the account the person answered), or the organization's
    account that last wrote to them, or its first account that can send. None when no account can
    send it or the message is refused (both logged; the opt-out itself stands)."""
    account = _confirmation_account(contact, official_account)
    if account is None or not account.can_send:
        logger.warning("opt-out of contact %s: no official account can send the confirmation", contact.pk)
        return None
    return _confirmation_send(account, contact, CONFIRMATION_TEXT, "optout")


# -- opt-in confirmation -------------------------------------------------------------------------


def opt_in_confirmation_send(contact: Contact, account: OfficialAccount) -> ConversationMessage | None:
    """Confirm an opt-in by keyword through the account the person texted, recorded in their thread.

    None when the account cannot send or the message is refused (logged; the consent stands)."""
    if not account.can_send:
        logger.warning("opt-in of contact %s: account %s cannot send the confirmation", contact.pk, account.pk)
        return None
    return _confirmation_send(account, contact, OPT_IN_CONFIRMATION_TEXT, "optin")


def _confirmation_send(account, contact: Contact, template: str, kind: str) -> ConversationMessage | None:
    """Send an opt-out / opt-in confirmation (``kind``) through ``message_send`` and record it in
    the person's thread; None when it is refused (logged: the opt-out or consent stands)."""
    text = template.format(name=account.display_name)
    try:
        with transaction.atomic():
            delivery = message_send(
                organization=account.organization,
                official_account=account,
                phone=contact.phone,
                content={"text": text},
                sms_text=text,
                client_reference=f"{kind}:{contact.pk}",
            )
    except ValidationError:
        logger.exception("%s confirmation for contact %s could not be sent", kind, contact.pk)
        return None
    return conversation_record_outbound(account, contact, delivery, text)
