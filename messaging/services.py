"""Single messages: one person, one message, through the priority lane (API, test sends, replies).

``message_send`` is the one service every single-message path calls, so a promotion sent on its own
meets the same rules as a campaign (特定電子メール法; docs in ``campaigns.compliance``):

- the person has not opted out (``opted_out``) and has an active consent (``no_consent``); the
  delivery keeps the consent it relied on (``Delivery.consent``), as a campaign's frozen audience does;
- the +Message content and the SMS text name the sender's formal name and say how to opt out
  (``display_rules``, the campaigns' rule ``message_display_problems``);
- inside the organization's quiet hours the message is accepted but held until they end: its
  ``not_before`` is the opening, and its lease runs until then, so no claim of the priority lane
  (its own task, a batch claimed beside another message, a redelivered task) can send it earlier.

A refusal raises ``MessageRefused`` (a ValidationError whose errors carry those codes) before
anything is written. Transactional messages are exempt from all three.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.audience import latest_active_consent
from campaigns.compliance import message_display_problems, quiet_hours_hold
from campaigns.models import Classification, Contact
from core.phone import normalize_mobile
from core.rich_content import validate_rich_content
from core.sms_text import validate_sms_text
from messaging.engine.freeze import frequency_cap, recent_promotions
from messaging.models import Delivery
from messaging.tasks import send_message


class MessageRefused(ValidationError):
    """A promotion the rules do not let through: the codes are ``opted_out``, ``no_consent`` and
    ``display_rules``; nothing was recorded."""


def message_send(
    *,
    organization,
    official_account,
    phone: str,
    content: dict,
    sms_text: str,
    classification: str = Classification.TRANSACTION,
    ttl_seconds: int = 3600,
    client_reference: str = "",
) -> Delivery:
    """Validate, record and enqueue one message; the send happens on the priority queue."""
    if official_account.organization_id != organization.id:
        raise ValidationError({"official_account": [_("Unknown official account.")]})
    if not official_account.can_send:
        raise ValidationError({"official_account": [_("The official account has not been approved by any carrier yet.")]})
    try:
        e164 = normalize_mobile(phone)
    except ValidationError as error:
        raise ValidationError({"to": error.messages}) from None
    validate_rich_content(content)
    limit = official_account.sms_gateway.sms_char_limit if official_account.sms_gateway else 660
    validate_sms_text(sms_text, limit=limit, short_link_base_setting=organization.short_link_base)
    contacts = Contact.objects.only("id", "organization_id", "phone", "opted_out_at").filter(
        organization=organization, phone=e164
    )
    if classification == Classification.PROMOTION:  # the consent the campaigns' freeze would rely on
        contacts = contacts.annotate(active_consent_id=latest_active_consent())
    contact = contacts.first()
    consent_id = None
    if classification == Classification.PROMOTION:
        consent_id = _promotion_check(official_account, contact, content, sms_text)
    not_before = quiet_hours_hold(organization, classification)  # the same decision as every claim
    # No savepoint: every check is done, and an API request runs this inside its own transaction,
    # where a savepoint would cost two more round trips to the database.
    with transaction.atomic(savepoint=False):
        if contact is None:
            contact = _contact_create(organization, e164)
        delivery = Delivery.objects.create(
            organization=organization,
            official_account=official_account,
            contact=contact,
            content=content,
            sms_text=sms_text,
            classification=classification,
            ttl_seconds=ttl_seconds,
            client_reference=client_reference,
            consent_id=consent_id,
            not_before=not_before,
            # Held for quiet hours: leased until the window opens, so no claim can take it before.
            lease_until=not_before,
        )
        if not_before is None:
            transaction.on_commit(lambda: send_message.delay(delivery.pk))
        else:
            wait = max(1.0, (not_before - timezone.now()).total_seconds())
            transaction.on_commit(lambda: send_message.apply_async((delivery.pk,), countdown=wait, queue="priority"))
    return delivery


def _promotion_check(official_account, contact, content, sms_text) -> int:
    """Refuse a promotion the rules do not let through; the id of the consent it relies on."""
    if contact is not None and contact.opted_out_at:
        raise MessageRefused(
            {"to": [ValidationError(_("This person has opted out of promotional messages."), code="opted_out")]}
        )
    consent_id = contact.active_consent_id if contact is not None else None
    if consent_id is None:
        raise MessageRefused({"to": [ValidationError(
            _("This person has no active consent to promotional messages: record their consent first."),
            code="no_consent",
        )]})
    cap = frequency_cap(official_account.organization_id)
    if cap is not None and contact is not None:
        count, days = cap
        given = (Contact.objects.filter(pk=contact.pk)
                 .annotate(given=recent_promotions(timezone.now() - timedelta(days=days)))
                 .values_list("given", flat=True).get())
        if given >= count:
            raise MessageRefused({"to": [ValidationError(
                _("This person already had %(count)d promotions in %(days)d days, the organization's frequency "
                  "cap.") % {"count": count, "days": days},
                code="frequency_cap",
            )]})
    problems = message_display_problems(official_account, content, sms_text)
    if problems:
        errors: dict[str, list] = {}
        for part, problem in problems:
            errors.setdefault(part, []).append(ValidationError(problem, code="display_rules"))
        raise MessageRefused(errors)
    return consent_id


def _contact_create(organization, e164: str) -> Contact:
    """A new contact with just the number, in one statement (no savepoint); the existing one if a
    concurrent request created it first."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Contact._meta.db_table} (organization_id, phone, name, attributes, opted_out_at, "
            f"opt_out_method, created_at, updated_at) VALUES (%s, %s, '', '{{}}', NULL, '', %s, %s) "
            f"ON CONFLICT (organization_id, phone) DO NOTHING RETURNING id",
            [organization.pk, e164, *[connection.ops.adapt_datetimefield_value(now)] * 2],
        )
        row = cursor.fetchone()
    if row is None:
        return Contact.objects.get(organization=organization, phone=e164)
    fields = ["id", "organization_id", "phone", "name", "attributes", "opted_out_at", "opt_out_method", "created_at",
              "updated_at"]
    return Contact.from_db(connection.alias, fields, [row[0], organization.pk, e164, "", {}, None, "", now, now])
