"""Campaign engagement: a person's first click or reply to a campaign, counted once.

The inbox credits replies and tapped chips (messaging.inbox), tracked button links credit clicks
(messaging.links); both end here, so a person counts once per campaign and kind however they engage.
"""

from __future__ import annotations

from collections import Counter

from django.db import IntegrityError, transaction

from messaging.counters import counters_add
from messaging.models import CampaignEngagement, EngagementKind, Metric


def engagement_record(campaign_id: int, contact_id: int, kind: str, channel: str = "") -> bool:
    """Count a person's first click or reply to a campaign. Returns True if it was the first."""
    try:
        with transaction.atomic():
            CampaignEngagement.objects.create(campaign_id=campaign_id, contact_id=contact_id, kind=kind)
    except IntegrityError:
        return False
    metric = Metric.CLICKED if kind == EngagementKind.CLICKED else Metric.REPLIED
    counters_add(Counter({(campaign_id, channel or "", metric, ""): 1}))
    return True
