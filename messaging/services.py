"""Single messages: one person, one message, through the priority lane (API, test sends, replies)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import Classification, Contact
from core.phone import normalize_mobile
from core.rich_content import validate_rich_content
from core.sms_text import validate_sms_text
from messaging.models import Delivery
from messaging.tasks import send_message


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
    validate_sms_text(sms_text, limit=limit)
    contact = (
        Contact.objects.only("id", "organization_id", "phone", "opted_out_at")
        .filter(organization=organization, phone=e164)
        .first()
    )
    if classification == Classification.PROMOTION and contact and contact.opted_out_at:
        raise ValidationError({"to": [_("This person has opted out of promotional messages.")]})
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
        )
        transaction.on_commit(lambda: send_message.delay(delivery.pk))
    return delivery


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


def send_test_message(campaign, phone_e164: str, user) -> Delivery:
    """Send the campaign's content to one number, outside the campaign and its stats."""
    return message_send(
        organization=campaign.organization,
        official_account=campaign.official_account,
        phone=phone_e164,
        content=campaign.content,
        sms_text=campaign.sms_text,
        classification=Classification.TRANSACTION,
        ttl_seconds=campaign.ttl_seconds,
        client_reference=f"test:{campaign.pk}",
    )
