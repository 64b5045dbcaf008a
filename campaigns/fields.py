"""Typed custom fields of contacts: how a value typed by a person or read from a file becomes the
value stored in ``Contact.attributes``, one conversion for the import and the contact form.

Stored forms (what segments compare, see ``messaging.segments``):

- text: the string, trimmed;
- number: a JSON number (an int when whole), from half- or full-width digits with or without
  thousands separators (``1,200``, ``１２００``);
- date: an ISO ``YYYY-MM-DD`` string, which sorts as the dates do; read from ``2024-04-01``,
  ``2024/4/1``, ``2024年4月1日``, ``20240401`` and Excel's date cells;
- choice: one of the field's choices, exactly as defined (compared after NFKC and case folding).

An empty value means "not set": the key is removed from the attributes.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import JSONField
from django.utils.translation import gettext as _

from campaigns.models import Contact, CustomField, FieldKind

# A key is one step of an ORM path into the attributes (messaging.segments): no "__", not all
# digits (an array index), and not the name of a lookup (checked in custom_field_save).
KEY_PATTERN = re.compile(r"^(?!\d+$)(?!.*__)[^\s\"'\\]{1,50}$")
_RESERVED_KEYS = {name.lower() for name in JSONField.get_lookups()} | {"lt", "gt", "lte", "gte", "icontains"}
CHOICES_MAX = 100
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d")


def _normalize(text) -> str:
    return unicodedata.normalize("NFKC", str(text)).strip()


def organization_fields(organization_id) -> dict[str, CustomField]:
    """The organization's custom fields by key."""
    return {field.key: field for field in CustomField.objects.filter(organization_id=organization_id)}


def parse_number(text) -> int | float:
    if isinstance(text, int | float) and not isinstance(text, bool):
        return int(text) if float(text).is_integer() else float(text)
    value = _normalize(text).replace(",", "").replace("、", "").replace(" ", "")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(value) from None
    if not number.is_finite():
        raise ValueError(value)
    return int(number) if number == number.to_integral_value() else float(number)


def parse_date(text) -> str:
    if isinstance(text, datetime):
        return text.date().isoformat()
    if isinstance(text, date):
        return text.isoformat()
    value = _normalize(text)
    value = value.split("T")[0].split(" ")[0] if re.match(r"^\d{4}-\d{2}-\d{2}[T ]", value) else value
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(value, pattern).date().isoformat()
        except ValueError:
            continue
    raise ValueError(value)


def field_value_convert(field: CustomField, raw):
    """The stored value of ``raw`` for ``field`` (None: not set). Raises ValidationError with a
    message that names the field and the value."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if field.kind == FieldKind.NUMBER:
        try:
            return parse_number(raw)
        except ValueError:
            raise ValidationError(
                _("“%(value)s” is not a number (%(field)s).") % {"value": raw, "field": field.label}
            ) from None
    if field.kind == FieldKind.DATE:
        try:
            return parse_date(raw)
        except ValueError:
            raise ValidationError(
                _("“%(value)s” is not a date such as 2024-04-01 (%(field)s).") % {"value": raw, "field": field.label}
            ) from None
    if field.kind == FieldKind.CHOICE:
        wanted = _normalize(raw).casefold()
        for choice in field.choices:
            if _normalize(choice).casefold() == wanted:
                return choice
        raise ValidationError(
            _("“%(value)s” is not one of the choices of %(field)s: %(choices)s.")
            % {"value": raw, "field": field.label, "choices": "、".join(field.choices)}
        )
    return str(raw).strip()[:1000]


def choices_parse(text: str) -> list[str]:
    """The choices of a choice field from one per line (or comma-separated), without duplicates."""
    seen, choices = set(), []
    for part in re.split(r"[\n,、]", text or ""):
        choice = _normalize(part)
        if choice and choice.casefold() not in seen:
            seen.add(choice.casefold())
            choices.append(choice[:100])
    return choices


def custom_field_save(field: CustomField) -> CustomField:
    """Create or change a field, checking its key and choices."""
    errors = {}
    field.key = _normalize(field.key)
    if not KEY_PATTERN.match(field.key) or field.key.lower() in _RESERVED_KEYS:
        errors["key"] = _("Use up to 50 characters without spaces, quotes or “__”, not only digits.")
    elif CustomField.objects.filter(organization_id=field.organization_id, key=field.key).exclude(pk=field.pk).exists():
        errors["key"] = _("A field with this key already exists.")
    if field.kind == FieldKind.CHOICE and not field.choices:
        errors["choices"] = _("Give at least one choice, one per line.")
    if len(field.choices) > CHOICES_MAX:
        errors["choices"] = _("At most %(max)d choices.") % {"max": CHOICES_MAX}
    if field.kind != FieldKind.CHOICE:
        field.choices = []
    if errors:
        raise ValidationError(errors)
    field.save()
    return field


def contact_fields_update(contact: Contact, raw_values: dict) -> Contact:
    """Set the contact's custom field values from ``{key: raw}``; every bad value is reported at its key."""
    fields = organization_fields(contact.organization_id)
    errors, converted = {}, {}
    for key, raw in raw_values.items():
        field = fields.get(key)
        if field is None:
            continue
        try:
            converted[key] = field_value_convert(field, raw)
        except ValidationError as error:
            errors[key] = error.messages
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        attributes = dict(locked.attributes or {})
        for key, value in converted.items():
            if value is None:
                attributes.pop(key, None)
            else:
                attributes[key] = value
        locked.attributes = attributes
        locked.save(update_fields=["attributes", "updated_at"])
    contact.attributes = attributes
    return contact
