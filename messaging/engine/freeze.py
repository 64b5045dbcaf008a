"""Stage 1, freezing the audience: one QUEUED Delivery per (campaign, contact), in keyset-paged
``INSERT … SELECT`` chunks whose cursor moves in the same transaction, so a crash resumes where it
stopped. Opted-out and unconsented contacts are left out of promotions and counted as skipped, and
so are people over the organization's frequency cap ("at most N promotions per person in D days").

The cap is decided here and nowhere else: ``audience_candidates`` annotates each candidate with it,
the freeze leaves those over it out, and ``audience_estimate`` (the composer's and the launch
confirmation's count) counts them from the same annotation."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Organization
from campaigns.audience import annotated_candidates, audience_count
from campaigns.models import Campaign, Classification, Contact
from messaging.counters import counters_add
from messaging.models import Delivery, DeliveryStatus, Metric
from messaging.segments import campaign_segment_filters

FREEZE_CHUNK = 10_000
FREEZE_LOCK = 0x46524545  # advisory lock namespace of audience freezing ("FREE")


def frequency_cap(organization_id) -> tuple[int, int] | None:
    """The organization's cap as (promotions, days), or None when it is off."""
    count, days = Organization.objects.values_list("frequency_cap_count", "frequency_cap_days").get(
        pk=organization_id
    )
    return (count, days) if count else None


def recent_promotions(since, exclude_campaign_id=None):
    """How many promotions the candidate (OuterRef "pk") was given since ``since``: campaign
    deliveries of promotions and single promotions (API), not failed or cancelled. Transactional
    messages never count."""
    deliveries = Delivery.objects.filter(
        contact_id=OuterRef("pk"), created_at__gte=since, status__lt=DeliveryStatus.FAILED
    ).filter(
        Q(campaign__classification=Classification.PROMOTION)
        | Q(campaign__isnull=True, classification=Classification.PROMOTION)
    )
    if exclude_campaign_id is not None:
        deliveries = deliveries.exclude(campaign_id=exclude_campaign_id)
    counted = deliveries.order_by().values("contact_id").annotate(n=Count("id")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def audience_candidates(organization_id, classification, include, exclude, *, campaign_id=None,
                        include_filter=None, exclude_filter=None):
    """The candidates (the lists ``include`` and the segment filter ``include_filter``, minus
    ``exclude`` and ``exclude_filter``) with what the freeze decides on: opted out, has consent, the
    consent relied on, and ``over_cap`` (a promotion's candidate who already had the frequency cap's
    number of promotions in its period; never for transactional messages or with the cap off)."""
    queryset = annotated_candidates(organization_id, include, exclude, include_filter, exclude_filter)
    cap = frequency_cap(organization_id) if classification == Classification.PROMOTION else None
    if cap is None:
        return queryset.annotate(over_cap=Value(False, output_field=BooleanField()))
    count, days = cap
    since = timezone.now() - timedelta(days=days)
    return queryset.annotate(recent_promotions=recent_promotions(since, campaign_id)).annotate(
        over_cap=ExpressionWrapper(Q(recent_promotions__gte=count), output_field=BooleanField())
    )


def _audience_sql(campaign: Campaign):
    """SQL and params selecting (contact id, opted out, has consent, consent, over the cap) of the
    campaign's candidates.

    Segments are evaluated here, at the freeze, with their engagement windows ending when the run
    started (the same instant for every chunk), so a recurring run reaches who matches at that run.
    """
    include = list(campaign.audience_lists.values_list("id", flat=True))
    exclude = list(campaign.exclusion_lists.values_list("id", flat=True))
    started_at = Campaign.objects.filter(pk=campaign.pk).values_list("started_at", flat=True).first()
    include_filter, exclude_filter = campaign_segment_filters(campaign, now=started_at)
    queryset = audience_candidates(
        campaign.organization_id, campaign.classification, include, exclude, campaign_id=campaign.pk,
        include_filter=include_filter, exclude_filter=exclude_filter,
    ).values_list("id", "opted_out_at", "has_consent", "active_consent_id", "over_cap")
    return queryset.query.sql_with_params()


def audience_estimate(organization, classification, include_list_ids, exclude_list_ids, include_filter=None,
                      exclude_filter=None) -> dict:
    """The recipient count before launch (composer, launch confirmation): the total, who is left
    out and why — opted out, no consent, over the frequency cap — and who would be sent to, decided
    as the freeze decides (segments as ``include_filter`` / ``exclude_filter``)."""
    counts = audience_count(organization, classification, include_list_ids, exclude_list_ids, include_filter,
                            exclude_filter)
    counts["frequency_cap"] = 0
    organization_id = getattr(organization, "id", organization)
    if (
        classification != Classification.PROMOTION
        or not counts["total"]
        or frequency_cap(organization_id) is None
    ):
        return counts
    capped = (
        audience_candidates(
            organization_id, classification, list(include_list_ids or []), list(exclude_list_ids or []),
            include_filter=include_filter, exclude_filter=exclude_filter,
        )
        .filter(opted_out_at__isnull=True, has_consent=True, over_cap=True)
        .count()
    )
    counts["frequency_cap"] = capped
    counts["eligible"] -= capped
    return counts


def audience_freeze_chunk(campaign: Campaign, chunk: int = FREEZE_CHUNK) -> bool:
    """Insert the next chunk of deliveries. Returns True when the whole audience is frozen."""
    delivery = Delivery._meta.db_table
    inner_sql, inner_params = _audience_sql(campaign)
    promotion = campaign.classification == Classification.PROMOTION
    uuid_sql = "gen_random_uuid()" if connection.vendor == "postgresql" else "lower(hex(randomblob(16)))"
    with transaction.atomic():
        # One freezer at a time per campaign (the launch task, and dispatch chains helping). Not a
        # lock on the campaign's row: dispatch updates that row at every batch and must not wait.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [FREEZE_LOCK, campaign.pk])
        locked = Campaign.objects.only("audience_cursor", "audience_frozen_at").get(pk=campaign.pk)
        if locked.audience_frozen_at:
            return True
        cursor_id = locked.audience_cursor
        # The page is a range of contact ids found first with the (organization, id) index, so that
        # each chunk reads only its own contacts, however the planner joins the audience query.
        upper_id = (
            Contact.objects.filter(organization_id=campaign.organization_id, id__gt=cursor_id)
            .order_by("id")
            .values_list("id", flat=True)[chunk - 1 : chunk]
            .first()
        )
        bounded = "a.id > %s AND a.id <= %s" if upper_id is not None else "a.id > %s"
        page = f"SELECT a.* FROM ({inner_sql}) AS a WHERE {bounded} ORDER BY a.id LIMIT %s"
        page_params = [*inner_params, cursor_id, *([upper_id] if upper_id is not None else []), chunk]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT COUNT(*), MAX(p.id), "
                f"SUM(CASE WHEN p.opted_out_at IS NOT NULL THEN 1 ELSE 0 END), "
                f"SUM(CASE WHEN p.opted_out_at IS NULL AND NOT p.has_consent THEN 1 ELSE 0 END), "
                f"SUM(CASE WHEN p.opted_out_at IS NULL AND p.has_consent AND p.over_cap THEN 1 ELSE 0 END) "
                f"FROM ({page}) AS p",
                page_params,
            )
            count, last_id, opted_out, no_consent, over_cap = cursor.fetchone()
            if not count and upper_id is None:
                Campaign.objects.filter(pk=campaign.pk).update(audience_frozen_at=timezone.now())
                return True
            last_id = upper_id if upper_id is not None else last_id
            eligible = "p.opted_out_at IS NULL AND p.has_consent AND NOT p.over_cap" if promotion else "1=1"
            cursor.execute(
                f"INSERT INTO {delivery} (uuid, organization_id, campaign_id, contact_id, channel, status, "
                f"rcs_provider_id, sms_provider_id, error_code, error_reason, fallback_reason, pending_fallback, "
                f"attempts, created_at, sms_text, classification, client_reference, consent_id) "
                f"SELECT {uuid_sql}, %s, %s, p.id, '', 0, '', '', '', '', '', FALSE, 0, %s, '', '', '', p.active_consent_id "
                f"FROM ({page}) AS p WHERE {eligible} "
                f"ON CONFLICT (campaign_id, contact_id) WHERE campaign_id IS NOT NULL DO NOTHING",
                [campaign.organization_id, campaign.pk, timezone.now(), *page_params],
            )
            inserted = cursor.rowcount
        Campaign.objects.filter(pk=campaign.pk).update(audience_cursor=last_id)
        increments = Counter({(campaign.pk, "", Metric.TARGETED, ""): inserted})
        if promotion:
            increments[(campaign.pk, "", Metric.SKIPPED, "opted_out")] += opted_out or 0
            increments[(campaign.pk, "", Metric.SKIPPED, "no_consent")] += no_consent or 0
            increments[(campaign.pk, "", Metric.SKIPPED, "frequency_cap")] += over_cap or 0
        counters_add(increments)
    return False


def audience_freeze(campaign: Campaign) -> None:
    while not audience_freeze_chunk(campaign):
        pass
