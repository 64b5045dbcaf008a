"""One person's data in messaging: erasing their inbox, and the disclosure export (開示請求).

- ``on_contact_erased`` answers ``campaigns.signals.contact_erased`` (sent by
  ``campaigns.optout.contact_erase``, the one erasure service the console and the API call; connected
  in MessagingConfig.ready) with ``contact_inbox_erase``: the person's conversations and every
  message in them (texts, chip postbacks, locations, files) are deleted; the stored file bytes are
  deleted through the file field's storage once the erasure commits; the carrier payloads those
  inbound messages came in (provider events, already applied) are blanked; and the content of the
  person's finished single messages (delivered, read, failed or cancelled: never sent again) is
  blanked. Delivery statuses and the consent and opt-out history stay (the law asks for them).
- ``contact_disclosure``: everything held about one person — contact, attributes, lists, consents,
  the consent and opt-out history, deliveries, conversations — as one JSON-ready dict, for a
  disclosure request under the personal information protection law (個人情報保護法 開示請求). The
  console view audits each export ("export.disclosure").
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import Contact
from campaigns.optout import consent_history_events
from messaging.models import Conversation, ConversationMessage, Delivery, DeliveryStatus, ProviderEvent

logger = logging.getLogger(__name__)

DISCLOSURE_FORMAT = "plusmessage-disclosure/1"
# A single message in one of these states is never sent again: its content may go.
FINISHED_STATUSES = (DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)
ERASED_PAYLOAD = {"erased": True}


def on_contact_erased(sender, contact, **kwargs) -> dict:
    """``campaigns.signals.contact_erased`` receiver: what it removed goes into the audit event."""
    return contact_inbox_erase(contact)


def stored_files_delete(names: list[str]) -> None:
    """Delete stored inbox files through the file field's storage (whichever storage that is).

    Called after the rows that named them are gone and committed: a rolled-back erasure must not
    have lost the bytes, and a missing file is not an error."""
    storage = ConversationMessage._meta.get_field("file").storage
    for name in names:
        try:
            storage.delete(name)
        except Exception:  # one unreadable file must not keep the others
            logger.exception("stored inbox file %s could not be deleted", name)


def contact_inbox_erase(contact: Contact) -> dict:
    """Delete the person's inbox (see the module docstring). Returns counts for the audit log."""
    with transaction.atomic():
        messages = ConversationMessage.objects.filter(conversation__contact_id=contact.pk)
        files = [name for name in messages.exclude(file="").values_list("file", flat=True) if name]
        events = list(
            messages.filter(direction="in").exclude(provider_event_id="").values_list("provider", "provider_event_id")
        )
        blanked_events = 0
        for provider, event_id in events:
            blanked_events += ProviderEvent.objects.filter(
                provider=provider, event_id=event_id, applied_at__isnull=False
            ).update(payload=ERASED_PAYLOAD)
        message_count = messages.count()
        Conversation.objects.filter(contact_id=contact.pk).delete()  # its messages go with it
        bodies = Delivery.objects.filter(
            contact_id=contact.pk, campaign__isnull=True, status__in=FINISHED_STATUSES
        ).filter(Q(content__isnull=False) | ~Q(sms_text="")).update(content=None, sms_text="")
        if files:
            transaction.on_commit(lambda: stored_files_delete(files))
    return {"inbox_messages": message_count, "inbox_files": len(files), "provider_events_blanked": blanked_events,
            "message_bodies_blanked": bodies}


# -- disclosure ------------------------------------------------------------------------------------


def _when(moment):
    return timezone.localtime(moment).isoformat() if moment else None


def contact_disclosure(contact: Contact) -> dict:
    """Everything held about one person, as one JSON-ready dict (see the module docstring)."""
    consents = [
        {"granted_at": _when(c.granted_at), "method": c.method, "source": c.source,
         "wording_version": c.wording_version, "evidence": c.evidence, "revoked_at": _when(c.revoked_at),
         "revoke_method": c.revoke_method, "recorded_at": _when(c.created_at)}
        for c in contact.consents.order_by("granted_at", "id")
    ]
    history = [
        {"action": event.action, "at": _when(event.occurred_at),
         **{key: (event.details or {}).get(key) for key in ("method", "source", "wording_version")
            if (event.details or {}).get(key) is not None}}
        for event in consent_history_events(contact)
    ]
    lists = [
        {"name": m.contact_list.name, "purpose": m.contact_list.purpose, "added_at": _when(m.added_at)}
        for m in contact.list_memberships.select_related("contact_list").order_by("added_at", "id")
    ]
    deliveries = []
    for d in Delivery.objects.filter(contact_id=contact.pk).select_related("campaign").order_by("created_at", "id").iterator():
        row = {"message_id": str(d.uuid), "campaign": d.campaign.name if d.campaign_id else None,
               "classification": d.classification or (d.campaign.classification if d.campaign_id else ""),
               "channel": d.channel, "status": DeliveryStatus(d.status).name.lower(), "fallback_reason": d.fallback_reason,
               "created_at": _when(d.created_at), "sent_at": _when(d.sent_at),
               "delivered_at": _when(d.delivered_at), "read_at": _when(d.read_at), "failed_at": _when(d.failed_at)}
        if d.campaign_id:
            row.update(content=d.campaign.content, sms_text=d.campaign.sms_text)
        else:
            row.update(content=d.content, sms_text=d.sms_text)
        deliveries.append(row)
    conversations = []
    for conversation in Conversation.objects.filter(contact_id=contact.pk).select_related("official_account").order_by("id"):
        conversations.append({
            "official_account": conversation.official_account.display_name,
            "started_at": _when(conversation.created_at),
            "messages": [
                {"at": _when(m.created_at), "direction": m.direction, "kind": m.kind, "channel": m.channel,
                 "text": m.text, "postback": m.postback,
                 "location": {"latitude": m.latitude, "longitude": m.longitude} if m.latitude is not None else None,
                 "file": {"name": m.file.name, "type": m.file_mime} if m.file else None}
                for m in conversation.messages.order_by("created_at", "id")
            ],
        })
    return {
        "format": DISCLOSURE_FORMAT,
        "generated_at": _when(timezone.now()),
        "organization": contact.organization.name,
        "contact": {"mobile_number": contact.phone, "name": contact.name, "attributes": contact.attributes,
                    "opted_out_at": _when(contact.opted_out_at), "opt_out_method": contact.opt_out_method,
                    "erased_at": _when(contact.erased_at),
                    "created_at": _when(contact.created_at), "updated_at": _when(contact.updated_at)},
        "lists": lists,
        "consents": consents,
        "consent_history": history,
        "deliveries": deliveries,
        "conversations": conversations,
    }
