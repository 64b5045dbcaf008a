"""Campaign statistics (messaging.stats) read from the counters: the chart's series comes in buckets
that fit the campaign's length — seconds for a short send, minutes, then hours — added up by the
database from the 10-second counters, aligned to Japan time, folded and pending counters alike."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from campaigns.compliance import TOKYO
from messaging.counters import COUNTER_BUCKET_SECONDS, counter_bucket, counters_add, counters_fold
from messaging.models import Channel, Metric
from messaging.stats import campaign_stats
from tests.campaigns.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def add(campaign, at, metric, count, channel=Channel.RCS):
    counters_add(Counter({(campaign.pk, channel, metric, ""): count}), counter_bucket(at))


def test_counters_are_kept_per_ten_seconds():
    moment = datetime(2026, 1, 1, 1, 2, 37, 500_000, tzinfo=UTC)
    assert COUNTER_BUCKET_SECONDS == 10
    assert counter_bucket(moment) == datetime(2026, 1, 1, 1, 2, 30, tzinfo=UTC)


def test_a_short_send_is_charted_in_seconds():
    campaign = CampaignFactory()
    start = datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)
    for second, sent in [(0, 100), (10, 250), (20, 250), (30, 40)]:
        add(campaign, start + timedelta(seconds=second), Metric.SENT, sent)
        add(campaign, start + timedelta(seconds=second + 4), Metric.DELIVERED, sent - 5)
    counters_fold()  # folded and pending counters are read alike
    add(campaign, start + timedelta(seconds=38), Metric.READ, 7)
    stats = campaign_stats(campaign)
    assert stats["bucket_seconds"] == 10
    assert [point["at"] for point in stats["series"]] == [start + timedelta(seconds=s) for s in (0, 10, 20, 30)]
    assert [point["sent"] for point in stats["series"]] == [100, 250, 250, 40]
    assert stats["series"][-1]["read"] == 7
    assert stats["sent"] == 640 and stats["delivered"] == 620 and stats["read"] == 7


def test_a_long_campaign_is_charted_in_wider_buckets_aligned_to_japan_time():
    campaign = CampaignFactory()
    start = datetime(2026, 1, 1, 0, 2, 0, tzinfo=UTC)  # 09:02 in Tokyo
    for minute in range(0, 8 * 60, 7):  # every 7 minutes for 8 hours
        add(campaign, start + timedelta(minutes=minute), Metric.SENT, 10)
    stats = campaign_stats(campaign)
    assert stats["bucket_seconds"] == 300
    times = [point["at"].astimezone(TOKYO) for point in stats["series"]]
    assert times[0].strftime("%H:%M") == "09:00"
    assert all(moment.minute % 5 == 0 and moment.second == 0 for moment in times)
    assert sum(point["sent"] for point in stats["series"]) == stats["sent"] == 690
    assert len(stats["series"]) <= 120


def test_six_hour_buckets_start_at_midnight_in_japan():
    campaign = CampaignFactory()
    start = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    for hour in range(0, 24 * 25, 5):  # 25 days
        add(campaign, start + timedelta(hours=hour), Metric.READ, 1)
    stats = campaign_stats(campaign)
    assert stats["bucket_seconds"] == 21600
    assert {point["at"].astimezone(TOKYO).hour for point in stats["series"]} <= {0, 6, 12, 18}


def test_the_send_rate_comes_from_the_last_minutes():
    campaign = CampaignFactory()
    now = timezone.now()
    add(campaign, now - timedelta(hours=2), Metric.SENT, 100_000)  # long ago: not part of the rate
    add(campaign, now - timedelta(seconds=60), Metric.SENT, 600)
    rate = campaign_stats(campaign)["rate_per_s"]
    assert 5 <= rate <= 600 / 60
