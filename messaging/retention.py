"""Data retention: what is kept, for how long, and the daily job that removes the rest.

``retention_apply`` runs once a day (the ``messaging.tasks.apply_retention`` beat entry) and works in
batches of ``BATCH`` rows, each batch its own short transaction found by walking the primary key, so
it never holds a long lock and may be stopped and started again at any point.

Per organization (``Organization.retention_message_days`` and ``retention_consent_years``, set on
the console's Data retention page):
- **message bodies**: the content of single messages (API, test sends, inbox replies) older than the
  message period and finished (delivered, read, failed, cancelled: never sent again) is blanked; the
  delivery rows stay, with their status and times;
- **conversation content**: inbox messages older than the message period are deleted — texts,
  postbacks, locations and files (the stored bytes deleted through the file field's storage after the
  batch commits); the conversation itself stays;
- **consent and opt-out history** is never deleted while a person is a contact. Of an erased person
  (``Contact.erased_at``) only the number and that history are left; both go (the contact row, with
  its consents and deliveries) once the erasure, the opt-out and every consent's end are older than
  the consent period, which is never less than 3 years (campaigns.optout.RETENTION guards the
  delete as well).

For everyone, after its useful life (``USEFUL_LIFE``):
- **provider events** (carrier webhooks as received): applied ones after 30 days — carriers retry a
  webhook for days at most, and inbound messages are kept unique on their own;
- **idempotency records**: after 7 days — an answer is replayed for 24 hours
  (``API_IDEMPOTENCY_TTL_SECONDS``);
- **webhook attempts**: finished outbound webhook deliveries and their attempt log after 30 days;
- **counter deltas**: folded into the campaign counters within seconds (messaging.counters); this
  job folds any left behind, so none outlives a day. The folded counters are the statistics and stay.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.models import (
    IdempotencyRecord,
    Organization,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
)
from campaigns.models import Consent, Contact
from messaging.counters import counters_fold
from messaging.models import ConversationMessage, Delivery, ProviderEvent
from messaging.privacy import FINISHED_STATUSES, stored_files_delete

logger = logging.getLogger(__name__)

BATCH = 5_000
USEFUL_LIFE = {
    "provider_events": timedelta(days=30),
    "idempotency_records": timedelta(days=7),
    "webhook_attempts": timedelta(days=30),
}


def _in_batches(queryset, action) -> int:
    """Call ``action(ids)`` in its own transaction for each batch of ``queryset``'s ids, in id order."""
    done, last_id = 0, 0
    while True:
        with transaction.atomic():
            ids = list(queryset.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:BATCH])
            if not ids:
                return done
            action(ids)
        done += len(ids)
        last_id = ids[-1]
        if len(ids) < BATCH:
            return done


def message_bodies_expire(organization: Organization, now) -> int:
    cutoff = now - timedelta(days=organization.retention_message_days)
    bodies = Delivery.objects.filter(
        organization_id=organization.pk, campaign__isnull=True, status__in=FINISHED_STATUSES, created_at__lt=cutoff
    ).filter(Q(content__isnull=False) | ~Q(sms_text=""))
    return _in_batches(bodies, lambda ids: Delivery.objects.filter(pk__in=ids).update(content=None, sms_text=""))


def conversation_content_expire(organization: Organization, now) -> int:
    cutoff = now - timedelta(days=organization.retention_message_days)
    old = ConversationMessage.objects.filter(conversation__organization_id=organization.pk, created_at__lt=cutoff)

    def delete(ids):
        files = [name for name in ConversationMessage.objects.filter(pk__in=ids).exclude(file="")
                 .values_list("file", flat=True) if name]
        ConversationMessage.objects.filter(pk__in=ids).delete()
        if files:
            transaction.on_commit(lambda: stored_files_delete(files))

    return _in_batches(old, delete)


def erased_contacts_expire(organization: Organization, now) -> int:
    """Erased people whose whole consent and opt-out history is older than the consent period."""
    cutoff = now - timedelta(days=365 * organization.retention_consent_years + 1)
    recent_consent = Consent.objects.filter(contact_id=OuterRef("pk")).filter(
        Q(granted_at__gte=cutoff) | Q(revoked_at__isnull=True) | Q(revoked_at__gte=cutoff)
    )
    expired = Contact.objects.filter(
        organization_id=organization.pk, erased_at__lt=cutoff, opted_out_at__lt=cutoff
    ).exclude(Exists(recent_consent))

    def delete(ids):
        # Deliveries first: a delivery protects the consent it relied on (Delivery.consent), and
        # Django's collector refuses the contact's cascade to its consents while one is left.
        Delivery.objects.filter(contact_id__in=ids).delete()
        # Contact.delete() (not a raw delete): the retention guard of campaigns.optout checks each again.
        Contact.objects.filter(pk__in=ids).delete()

    return _in_batches(expired, delete)


def provider_events_expire(now) -> int:
    old = ProviderEvent.objects.filter(applied_at__lt=now - USEFUL_LIFE["provider_events"])
    return _in_batches(old, lambda ids: ProviderEvent.objects.filter(pk__in=ids).delete())


def idempotency_records_expire(now) -> int:
    old = IdempotencyRecord.objects.filter(created_at__lt=now - USEFUL_LIFE["idempotency_records"])
    return _in_batches(old, lambda ids: IdempotencyRecord.objects.filter(pk__in=ids).delete())


def webhook_attempts_expire(now) -> int:
    old = WebhookDelivery.objects.exclude(status=WebhookDeliveryStatus.PENDING).filter(
        created_at__lt=now - USEFUL_LIFE["webhook_attempts"]
    )

    def delete(ids):
        WebhookAttempt.objects.filter(delivery_id__in=ids).delete()
        WebhookDelivery.objects.filter(pk__in=ids).delete()

    return _in_batches(old, delete)


def counter_deltas_fold() -> int:
    folded = 0
    while True:
        batch = counters_fold(limit=BATCH)
        folded += batch
        if batch < BATCH:
            return folded


def retention_apply(now=None) -> dict:
    """Apply every organization's retention settings and the fixed useful lives; returns counts."""
    now = now or timezone.now()
    counts = {"message_bodies": 0, "conversation_messages": 0, "erased_contacts": 0}
    for organization in Organization.objects.order_by("pk").only(
        "pk", "retention_message_days", "retention_consent_years"
    ):
        try:  # one organization's failure must not hold back the others' retention (batches done stay done)
            counts["message_bodies"] += message_bodies_expire(organization, now)
            counts["conversation_messages"] += conversation_content_expire(organization, now)
            counts["erased_contacts"] += erased_contacts_expire(organization, now)
        except Exception:
            logger.exception("retention of organization %s stopped", organization.pk)
            counts["failed_organizations"] = counts.get("failed_organizations", 0) + 1
    counts["provider_events"] = provider_events_expire(now)
    counts["idempotency_records"] = idempotency_records_expire(now)
    counts["webhook_deliveries"] = webhook_attempts_expire(now)
    counts["counter_deltas"] = counter_deltas_fold()
    return counts
