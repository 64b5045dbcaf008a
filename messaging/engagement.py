"""Campaign engagement: a person's first click or reply to a campaign, counted once.

The inbox credits replies and tapped chips (messaging.inbox), tracked button links and short links
in SMS text credit clicks (messaging.links); all end here, so a person counts once per campaign and kind however they engage.
"""

from __future__ import annotations

from collections import Counter

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from messaging.counters import counter_bucket, counters_add
from messaging.models import CampaignEngagement, CounterDelta, EngagementKind, Metric


def engagement_record(campaign_id: int, contact_id: int, kind: str, channel: str = "", variant: int | None = None) -> bool:
    """Count a person's first click or reply to a campaign. Returns True if it was the first.

    On PostgreSQL one statement inserts the engagement (ON CONFLICT DO NOTHING) and, only when it
    was new, the counter delta: a click costs a single round trip and no lock on a shared row."""
    metric = Metric.CLICKED if kind == EngagementKind.CLICKED else Metric.REPLIED
    if connection.vendor == "postgresql":
        engagements, deltas = CampaignEngagement._meta.db_table, CounterDelta._meta.db_table
        sql = (
            f"WITH first AS (INSERT INTO {engagements} (campaign_id, contact_id, kind, variant, created_at) "
            f"VALUES (%s, %s, %s, %s, %s) ON CONFLICT (campaign_id, contact_id, kind) DO NOTHING RETURNING campaign_id) "
            f"INSERT INTO {deltas} (campaign_id, minute, channel, metric, detail, delta) "
            f"SELECT campaign_id, %s, %s, %s, '', 1 FROM first RETURNING id"
        )
        params = [campaign_id, contact_id, kind, variant, timezone.now(), counter_bucket(), channel or "", metric]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() is not None
    try:
        with transaction.atomic():
            CampaignEngagement.objects.create(campaign_id=campaign_id, contact_id=contact_id, kind=kind, variant=variant)
    except IntegrityError:
        return False
    counters_add(Counter({(campaign_id, channel or "", metric, ""): 1}))
    return True
