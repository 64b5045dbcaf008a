"""Segments: what a condition may say, checking a segment's conditions, and saving it.

A segment is ``match`` (all / any) over a list of conditions, each a small dict kept as JSON:

- ``{"type": "field", "field": key, "op": eq|ne|lt|gt|contains|set|not_set, "value": …}`` — a custom
  field (``campaigns.fields``); the value is converted as the field's values are stored, so it
  compares like them. ``lt``/``gt`` are for numbers and dates, ``contains`` for text. ``ne`` also
  matches people without a value.
- ``{"type": "list", "op": in|not_in, "list": id}`` — list membership.
- ``{"type": "consent", "op": active|none}`` — holds an active (not revoked) consent record, or not.
- ``{"type": "opted_out", "op": yes|no}``.
- ``{"type": "carrier", "op": eq|ne, "value": "docomo"|"au"|"softbank"|"rakuten"|""}`` — the
  carrier last reported for the number ("" = not known yet).
- ``{"type": "created", "op": after|before|within_days, "value": "YYYY-MM-DD" | days}``.
- ``{"type": "engagement", "action": received|read|clicked|replied, "op": did|did_not,
  "campaign": id or null (any campaign), "days": N}`` — in the last N days.

The query filter is built in one place, ``messaging.segments.segment_filter`` (engagement reads the
deliveries), and every count, preview and freeze goes through it.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns.fields import field_value_convert, organization_fields, parse_date
from campaigns.models import Campaign, ContactList, FieldKind, Segment, SegmentMatch
from core import carriers

CONDITIONS_MAX = 20
DAYS_MAX = 3650

CONDITION_TYPES = [
    ("field", gettext_lazy("Custom field")),
    ("list", gettext_lazy("List")),
    ("consent", gettext_lazy("Consent")),
    ("opted_out", gettext_lazy("Opt-out")),
    ("carrier", gettext_lazy("Carrier")),
    ("created", gettext_lazy("Added")),
    ("engagement", gettext_lazy("Engagement")),
]

FIELD_OPS = {
    "eq": gettext_lazy("is"),
    "ne": gettext_lazy("is not"),
    "lt": gettext_lazy("is less than / before"),
    "gt": gettext_lazy("is more than / after"),
    "contains": gettext_lazy("contains"),
    "set": gettext_lazy("is set"),
    "not_set": gettext_lazy("is not set"),
}
OPS_BY_KIND = {
    FieldKind.TEXT: ("eq", "ne", "contains", "set", "not_set"),
    FieldKind.NUMBER: ("eq", "ne", "lt", "gt", "set", "not_set"),
    FieldKind.DATE: ("eq", "ne", "lt", "gt", "set", "not_set"),
    FieldKind.CHOICE: ("eq", "ne", "set", "not_set"),
}
VALUELESS_OPS = {"set", "not_set"}
LIST_OPS = {"in": gettext_lazy("is in"), "not_in": gettext_lazy("is not in")}
CONSENT_OPS = {"active": gettext_lazy("has an active consent"), "none": gettext_lazy("has no active consent")}
OPTED_OUT_OPS = {"no": gettext_lazy("has not opted out"), "yes": gettext_lazy("has opted out")}
CARRIER_OPS = {"eq": gettext_lazy("is"), "ne": gettext_lazy("is not")}
CARRIER_CHOICES = [
    (carriers.DOCOMO, "docomo"),
    (carriers.AU, "au"),
    (carriers.SOFTBANK, "SoftBank"),
    (carriers.RAKUTEN, gettext_lazy("Rakuten Mobile")),
    ("", gettext_lazy("Unknown")),
]
CREATED_OPS = {
    "within_days": gettext_lazy("in the last N days"),
    "after": gettext_lazy("on or after"),
    "before": gettext_lazy("before"),
}
ENGAGEMENT_ACTIONS = {
    "received": gettext_lazy("received"),
    "read": gettext_lazy("read"),
    "clicked": gettext_lazy("clicked"),
    "replied": gettext_lazy("replied to"),
}
ENGAGEMENT_OPS = {"did": gettext_lazy("did"), "did_not": gettext_lazy("did not")}


def _days(value) -> int:
    try:
        days = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationError(_("Give a number of days.")) from None
    if not 1 <= days <= DAYS_MAX:
        raise ValidationError(_("Give a number of days from 1 to %(max)d.") % {"max": DAYS_MAX})
    return days


def _int_id(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def condition_clean(organization_id, condition: dict, fields=None) -> dict:
    """The condition in its stored form, or ValidationError with a message for the person."""
    kind = condition.get("type")
    op = condition.get("op")
    if kind == "field":
        fields = organization_fields(organization_id) if fields is None else fields
        field = fields.get(condition.get("field") or "")
        if field is None:
            raise ValidationError(_("Choose a field."))
        if op not in OPS_BY_KIND[field.kind]:
            raise ValidationError(_("Choose a comparison."))
        if op in VALUELESS_OPS:
            return {"type": kind, "field": field.key, "op": op}
        value = field_value_convert(field, condition.get("value"))
        if value is None:
            raise ValidationError(_("Give a value to compare with."))
        return {"type": kind, "field": field.key, "op": op, "value": value}
    if kind == "list":
        list_id = _int_id(condition.get("list"))
        if op not in LIST_OPS or not ContactList.objects.filter(organization_id=organization_id, pk=list_id).exists():
            raise ValidationError(_("Choose a list."))
        return {"type": kind, "op": op, "list": list_id}
    if kind == "consent":
        if op not in CONSENT_OPS:
            raise ValidationError(_("Choose a consent state."))
        return {"type": kind, "op": op}
    if kind == "opted_out":
        if op not in OPTED_OUT_OPS:
            raise ValidationError(_("Choose an opt-out state."))
        return {"type": kind, "op": op}
    if kind == "carrier":
        value = condition.get("value") or ""
        if op not in CARRIER_OPS or value not in dict(CARRIER_CHOICES):
            raise ValidationError(_("Choose a carrier."))
        return {"type": kind, "op": op, "value": value}
    if kind == "created":
        if op == "within_days":
            return {"type": kind, "op": op, "value": _days(condition.get("value"))}
        if op in CREATED_OPS:
            try:
                return {"type": kind, "op": op, "value": parse_date(condition.get("value") or "")}
            except ValueError:
                raise ValidationError(_("Give a date such as 2024-04-01.")) from None
        raise ValidationError(_("Choose a comparison."))
    if kind == "engagement":
        action = condition.get("action")
        if action not in ENGAGEMENT_ACTIONS or op not in ENGAGEMENT_OPS:
            raise ValidationError(_("Choose what the person did."))
        campaign_id = _int_id(condition.get("campaign")) if condition.get("campaign") not in (None, "") else None
        if campaign_id is not None and not Campaign.objects.filter(
            organization_id=organization_id, pk=campaign_id
        ).exists():
            raise ValidationError(_("Choose a campaign."))
        return {
            "type": kind, "action": action, "op": op, "campaign": campaign_id, "days": _days(condition.get("days")),
        }
    raise ValidationError(_("Choose a kind of condition."))


def conditions_clean(organization_id, conditions) -> tuple[list[dict], dict[int, list[str]]]:
    """Every condition checked: (the good ones in stored form, {row index: messages} for the bad)."""
    fields = organization_fields(organization_id)
    cleaned, errors = [], {}
    for index, condition in enumerate(conditions or []):
        try:
            cleaned.append(condition_clean(organization_id, condition if isinstance(condition, dict) else {}, fields))
        except ValidationError as error:
            errors[index] = error.messages
    if len(cleaned) > CONDITIONS_MAX:
        errors[CONDITIONS_MAX] = [_("At most %(max)d conditions.") % {"max": CONDITIONS_MAX}]
    return cleaned, errors


def segment_save(segment: Segment, conditions, user=None) -> Segment:
    """Check and save a segment. Raises ValidationError keyed by ``name``, ``match`` or ``conditions``
    (a dict of row index to messages)."""
    errors = {}
    segment.name = (segment.name or "").strip()
    if not segment.name:
        errors["name"] = [_("Give the segment a name.")]
    if segment.match not in SegmentMatch.values:
        errors["match"] = [_("Choose all or any.")]
    cleaned, condition_errors = conditions_clean(segment.organization_id, conditions)
    if condition_errors:
        errors["conditions"] = condition_errors
    if errors:
        raise SegmentInvalid(errors)
    segment.conditions = cleaned
    if user is not None and segment.created_by_id is None:
        segment.created_by = user
    try:
        with transaction.atomic():
            segment.save()
    except IntegrityError:
        raise SegmentInvalid({"name": [_("A segment with this name already exists.")]}) from None
    return segment


class SegmentInvalid(ValidationError):
    """A segment that cannot be saved; ``errors`` keeps the per-row messages of its conditions."""

    def __init__(self, errors: dict):
        self.errors = errors
        super().__init__([message for key, value in errors.items() if key != "conditions" for message in value]
                         or [_("Correct the conditions.")])
