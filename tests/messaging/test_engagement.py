"""Campaign engagement: a person's first click and first reply each count once, on the channel they
engaged through, whether recorded on their own or inside a caller's transaction (the inbox)."""

import pytest
from django.db import transaction

from messaging.counters import counters_fold
from messaging.engagement import engagement_record
from messaging.models import CampaignEngagement, EngagementKind
from messaging.stats import campaign_stats
from tests.campaigns.factories import CampaignFactory, ContactFactory

pytestmark = pytest.mark.django_db


def test_each_kind_counts_once_per_person_and_campaign():
    campaign = CampaignFactory()
    first, second = (ContactFactory(organization=campaign.organization) for _ in range(2))
    assert engagement_record(campaign.pk, first.pk, EngagementKind.CLICKED, "sms") is True
    assert engagement_record(campaign.pk, first.pk, EngagementKind.CLICKED, "sms") is False
    assert engagement_record(campaign.pk, first.pk, EngagementKind.CLICKED, "rcs") is False  # the person, not the channel
    assert engagement_record(campaign.pk, first.pk, EngagementKind.REPLIED, "rcs") is True
    assert engagement_record(campaign.pk, second.pk, EngagementKind.CLICKED, "rcs", variant=1) is True
    with transaction.atomic():  # the inbox records inside its own transaction; a repeat must not break it
        assert engagement_record(campaign.pk, second.pk, EngagementKind.CLICKED, "rcs") is False
        assert engagement_record(campaign.pk, second.pk, EngagementKind.REPLIED, "rcs") is True

    stats = campaign_stats(campaign)
    assert (stats["clicked"], stats["replied"]) == (2, 2)
    assert stats["by_channel"]["sms"]["clicked"] == 1 and stats["by_channel"]["rcs"]["clicked"] == 1
    counters_fold()
    assert campaign_stats(campaign)["clicked"] == 2  # the same once folded
    assert CampaignEngagement.objects.get(contact=second, kind=EngagementKind.CLICKED).variant == 1
