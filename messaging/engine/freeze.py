"""Stage 1, freezing the audience: one QUEUED Delivery per (campaign, contact), in keyset-paged
``INSERT … SELECT`` chunks whose cursor moves in the same transaction, so a crash resumes where it
stopped. Opted-out and unconsented contacts are left out of promotions and counted as skipped."""

from __future__ import annotations

from collections import Counter

from django.db import connection, transaction
from django.utils import timezone

from campaigns.audience import annotated_candidates
from campaigns.models import Campaign, Classification, Contact
from messaging.counters import counters_add
from messaging.models import Delivery, Metric
from messaging.segments import campaign_segment_filters

FREEZE_CHUNK = 10_000
FREEZE_LOCK = 0x46524545  # advisory lock namespace of audience freezing ("FREE")


def _audience_sql(campaign: Campaign):
    """SQL and params selecting (contact id, opted out, has consent) of the campaign's candidates.

    Segments are evaluated here, at the freeze, with their engagement windows ending when the run
    started (the same instant for every chunk), so a recurring run reaches who matches at that run.
    """
    include = list(campaign.audience_lists.values_list("id", flat=True))
    exclude = list(campaign.exclusion_lists.values_list("id", flat=True))
    started_at = Campaign.objects.filter(pk=campaign.pk).values_list("started_at", flat=True).first()
    include_filter, exclude_filter = campaign_segment_filters(campaign, now=started_at)
    queryset = annotated_candidates(
        campaign.organization_id, include, exclude, include_filter, exclude_filter
    ).values_list(
        "id", "opted_out_at", "has_consent", "active_consent_id"
    )
    return queryset.query.sql_with_params()


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
                f"SUM(CASE WHEN p.opted_out_at IS NULL AND NOT p.has_consent THEN 1 ELSE 0 END) "
                f"FROM ({page}) AS p",
                page_params,
            )
            count, last_id, opted_out, no_consent = cursor.fetchone()
            if not count and upper_id is None:
                Campaign.objects.filter(pk=campaign.pk).update(audience_frozen_at=timezone.now())
                return True
            last_id = upper_id if upper_id is not None else last_id
            eligible = "p.opted_out_at IS NULL AND p.has_consent" if promotion else "1=1"
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
        counters_add(increments)
    return False


def audience_freeze(campaign: Campaign) -> None:
    while not audience_freeze_chunk(campaign):
        pass
