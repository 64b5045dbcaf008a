"""Segments as query filters: the one place a segment's conditions (``campaigns.segments``) become a
``Q`` over ``Contact`` — used by the builder's live count, the composer's audience count and preview,
and the launch's audience freeze alike, so they can never disagree.

It lives in messaging because engagement conditions read the deliveries (received, read) and the
campaign engagement records (clicked, replied). Every condition is a plain column test or an
``EXISTS`` on an indexed foreign key, so PostgreSQL answers a count over a million contacts with
one scan of the contacts (see ``bench_segments``). Erased contacts never match.

Custom field equality uses JSON containment (``attributes @> {"key": value}``) on PostgreSQL, which
the GIN index on ``attributes`` serves; elsewhere (the embedded SQLite) the key's value is compared.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from campaigns.models import Consent, Contact, ContactListMembership, Segment, SegmentMatch
from messaging.models import CampaignEngagement, Delivery, DeliveryStatus, EngagementKind


def _key_lookup(key: str, lookup: str, value) -> Q:
    # A field's key is a safe path step (campaigns.fields.KEY_PATTERN: no "__", not all digits, not
    # the name of a JSON lookup), so the ORM's own key transform prepares the value for each database.
    return Q(**{f"attributes__{key}__{lookup}": value})


def _field_q(condition) -> Q:
    key, op, value = condition["field"], condition["op"], condition.get("value")
    if op == "set":
        return Q(attributes__has_key=key)
    if op == "not_set":
        return ~Q(attributes__has_key=key)
    if op in ("eq", "ne"):
        equal = Q(attributes__contains={key: value}) if connection.vendor == "postgresql" else _key_lookup(
            key, "exact", value
        )
        # "is not" also matches people without a value, on every database.
        return equal if op == "eq" else (~equal | ~Q(attributes__has_key=key))
    if op == "contains":
        return _key_lookup(key, "icontains", str(value))
    return _key_lookup(key, op, value)


def _local_midnight(day: str):
    return datetime.combine(datetime.fromisoformat(day).date(), time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


def _engagement_q(condition, now) -> Q:
    since = now - timedelta(days=condition["days"])
    campaign_id = condition.get("campaign")
    action = condition["action"]
    if action in ("received", "read"):
        rows = Delivery.objects.filter(contact_id=OuterRef("pk"))
        if action == "received":
            rows = rows.filter(status__in=[DeliveryStatus.DELIVERED, DeliveryStatus.READ], delivered_at__gte=since)
        else:
            rows = rows.filter(read_at__gte=since)
    else:
        kind = EngagementKind.CLICKED if action == "clicked" else EngagementKind.REPLIED
        rows = CampaignEngagement.objects.filter(contact_id=OuterRef("pk"), kind=kind, created_at__gte=since)
    if campaign_id is None:
        rows = rows.filter(campaign_id__isnull=False)  # a campaign, not a message sent on its own
    else:
        # A recurring campaign's runs are campaigns of their own: the parent stands for all of them.
        rows = rows.filter(Q(campaign_id=campaign_id) | Q(campaign__parent_id=campaign_id))
    did = Q(Exists(rows))
    return did if condition["op"] == "did" else ~did


def condition_q(condition: dict, now=None) -> Q:
    """One stored condition (``campaigns.segments.condition_clean``'s form) as a filter on Contact."""
    now = now or timezone.now()
    kind, op = condition["type"], condition.get("op")
    if kind == "field":
        return _field_q(condition)
    if kind == "list":
        member = Q(Exists(ContactListMembership.objects.filter(contact_id=OuterRef("pk"),
                                                               contact_list_id=condition["list"])))
        return member if op == "in" else ~member
    if kind == "consent":
        active = Q(Exists(Consent.objects.filter(contact_id=OuterRef("pk"), revoked_at__isnull=True)))
        return active if op == "active" else ~active
    if kind == "opted_out":
        return Q(opted_out_at__isnull=(op == "no"))
    if kind == "carrier":
        same = Q(carrier=condition.get("value") or "")
        return same if op == "eq" else ~same
    if kind == "created":
        if op == "within_days":
            return Q(created_at__gte=now - timedelta(days=condition["value"]))
        start = _local_midnight(condition["value"])
        return Q(created_at__gte=start) if op == "after" else Q(created_at__lt=start)
    if kind == "engagement":
        return _engagement_q(condition, now)
    raise ValueError(f"unknown condition type {kind!r}")


def conditions_filter(match: str, conditions: list[dict], now=None) -> Q:
    """All (or any) of the conditions; no conditions match every contact."""
    now = now or timezone.now()
    parts = [condition_q(condition, now) for condition in conditions]
    if not parts:
        return Q(erased_at__isnull=True)
    combined = parts[0]
    for part in parts[1:]:
        combined = (combined | part) if match == SegmentMatch.ANY else (combined & part)
    return Q(erased_at__isnull=True) & combined


def segment_filter(segment: Segment, now=None) -> Q:
    """The segment as a filter on Contact, evaluated now (engagement windows end at ``now``)."""
    return conditions_filter(segment.match, segment.conditions, now)


def segments_filter(segments, now=None) -> Q | None:
    """Contacts in any of the segments (None for no segments)."""
    combined = None
    for segment in segments:
        part = segment_filter(segment, now)
        combined = part if combined is None else combined | part
    return combined


def campaign_segment_filters(campaign, now=None) -> tuple[Q | None, Q | None]:
    """A campaign's audience and exclusion segments as (include, exclude) filters for
    ``campaigns.audience.candidates`` (None where it has none)."""
    now = now or timezone.now()
    return (segments_filter(campaign.audience_segments.all(), now),
            segments_filter(campaign.exclusion_segments.all(), now))


def chosen_segment_filters(organization_id, include_ids, exclude_ids, now=None) -> tuple[Q | None, Q | None]:
    """The composer's chosen segments (only the organization's own count) as (include, exclude)."""
    now = now or timezone.now()
    own = Segment.objects.filter(organization_id=organization_id)
    return (segments_filter(own.filter(pk__in=list(include_ids or [])), now) if include_ids else None,
            segments_filter(own.filter(pk__in=list(exclude_ids or [])), now) if exclude_ids else None)


def segment_contacts(organization_id, match: str, conditions: list[dict], now=None):
    return Contact.objects.filter(organization_id=organization_id).filter(conditions_filter(match, conditions, now))


def segment_count(organization_id, match: str, conditions: list[dict], now=None) -> int:
    """How many of the organization's contacts match: the builder's live count."""
    return segment_contacts(organization_id, match, conditions, now).count()
