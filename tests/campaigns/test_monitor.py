"""The campaign monitor (campaigns.views.monitor): the chart is server-rendered SVG lines in buckets
that fit the send, with round ticks, and the Japanese page says 「+メッセージ」 throughout."""

import re
from collections import Counter
from datetime import time, timedelta

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from campaigns.models import CampaignStatus
from messaging.counters import counter_bucket, counters_add
from messaging.models import Channel, DeliveryStatus, Metric
from tests.accounts.factories import GatewayAccountFactory, OrganizationFactory, approved_account, member
from tests.campaigns.factories import CampaignFactory, ContactFactory
from tests.messaging.factories import DeliveryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def setting():
    organization = OrganizationFactory()
    organization.quiet_hours_start = organization.quiet_hours_end = time(0, 0)
    organization.save()
    account = approved_account(organization, rcs_gateway=GatewayAccountFactory(organization=organization))
    operator = member(organization, Role.OPERATOR, username="operator-user")
    admin = member(organization, Role.ADMIN, username="admin-user")
    campaign = CampaignFactory(organization=organization, official_account=account, status=CampaignStatus.COMPLETED,
                               approved_by=admin, approved_at=timezone.now() - timedelta(minutes=6),
                               started_at=timezone.now() - timedelta(minutes=5), finished_at=timezone.now())
    return campaign, operator


def page(client, campaign, user, language):
    client.force_login(user)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = language
    return client.get(reverse("campaigns:monitor", args=[campaign.pk])).content.decode()


def count(campaign, at, **metrics):
    counters_add(Counter({(campaign.pk, Channel.RCS, metric, ""): n for metric, n in metrics.items()}), counter_bucket(at))


def chart_of(body):
    return body.split('class="chart line-chart"', 1)[1].split("</svg>", 1)[0]


def test_a_half_minute_send_is_charted_per_ten_seconds_as_lines(client, setting):
    campaign, operator = setting
    start = timezone.now().replace(microsecond=0) - timedelta(minutes=3)
    count(campaign, start, **{Metric.TARGETED: 300, Metric.SENT: 120})
    count(campaign, start + timedelta(seconds=10), **{Metric.SENT: 150, Metric.DELIVERED: 200})
    count(campaign, start + timedelta(seconds=20), **{Metric.SENT: 30, Metric.DELIVERED: 95, Metric.READ: 40})
    body = page(client, campaign, operator, "en")
    assert "Sends, deliveries and reads" in body and "per 10 seconds" in body
    svg = chart_of(body)
    assert svg.count("<polyline") == 3 and "<circle" not in svg
    labels = [chunk.split(">", 1)[1].split("<", 1)[0] for chunk in svg.split("<text")[1:]]
    values = [label for label in labels if ":" not in label]
    times = [label for label in labels if ":" in label]
    assert values == ["0", "50", "100", "150", "200"]  # round, whole, never repeated
    assert times and all(re.search(r"\d\d:\d\d:\d\d$", label) for label in times)  # seconds for a short send
    japanese = page(client, campaign, operator, "ja")
    assert "送信・配信・既読の推移" in japanese and "10秒ごと" in japanese


def test_a_send_of_hours_is_charted_in_minutes(client, setting):
    campaign, operator = setting
    start = timezone.now() - timedelta(hours=5)
    for minute in range(0, 5 * 60, 10):
        count(campaign, start + timedelta(minutes=minute), **{Metric.SENT: 10})
    body = page(client, campaign, operator, "en")
    assert "per 5 minutes" in body
    labels = [chunk.split(">", 1)[1].split("<", 1)[0] for chunk in chart_of(body).split("<text")[1:]]
    times = [label for label in labels if ":" in label]
    assert [label for label in labels if ":" not in label] == ["0", "2", "4", "6", "8", "10"]
    assert 4 <= len(times) <= 7 and all(label.endswith(":00") for label in times), times  # on the hour


def test_the_japanese_monitor_says_plus_message_in_the_split_card_and_the_channel_column(client, setting):
    campaign, operator = setting
    count(campaign, timezone.now(), **{Metric.TARGETED: 1, Metric.SENT: 1})
    contact = ContactFactory(organization=campaign.organization, name="受信者")
    DeliveryFactory(campaign=campaign, contact=contact, channel=Channel.RCS, status=DeliveryStatus.DELIVERED)
    body = page(client, campaign, operator, "ja")
    assert '<span class="chan rcs">+メッセージ</span>' in body
    assert '<i class="dot rcs"></i>+メッセージ</span>' in body
    assert "+Message" not in body
    english = page(client, campaign, operator, "en")
    assert '<span class="chan rcs">+Message</span>' in english
