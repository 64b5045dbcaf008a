"""Costs on the campaign pages: the estimate in the launch confirmation and the monitor's cost so far."""

from datetime import time

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from campaigns.models import CampaignStatus
from core import throttle
from messaging.models import Channel, DeliveryStatus
from tests.accounts.factories import member
from tests.campaigns.factories import CampaignFactory
from tests.messaging.cost_fixtures import TWO_SEGMENT_SMS, audience, priced_organization
from tests.messaging.factories import DeliveryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def priced():
    p = priced_organization()
    p.org.quiet_hours_start = p.org.quiet_hours_end = time(0, 0)  # no quiet hours: same page at any hour
    p.org.save()
    return p


def login(client, user, language="en"):
    from django.conf import settings

    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def approved_campaign(p, **kwargs):
    admin = member(p.org, Role.ADMIN)
    values = {"organization": p.org, "official_account": p.account, "status": CampaignStatus.APPROVED,
              "approved_by": admin, "approved_at": timezone.now(), "sms_text": TWO_SEGMENT_SMS}
    values.update(kwargs)
    return CampaignFactory(**values)


def test_the_launch_confirmation_shows_the_estimated_cost(client, priced):
    contact_list, people = audience(priced.org, ["a", "b", "c", "d"])
    campaign = approved_campaign(priced)
    campaign.audience_lists.add(contact_list)
    throttle.cache_capabilities(priced.rbm.pk, {people[0].phone: (True, "docomo"), people[1].phone: (False, "au")})
    marketer = member(priced.org, Role.MARKETER)
    body = login(client, marketer).get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    dialog = body[body.index('id="launch-dialog"'):]
    estimate = dialog[dialog.index('id="cost-estimate"'):]
    # docomo +Message 3.5 + 3 SMS of 2 segments at 3.3 = 23.3
    assert "Estimated cost" in estimate and "¥23.3" in estimate
    assert "Expected by +Message: 25.0% (1); by SMS: 3." in estimate
    assert "SMS: 6 segments in all." in estimate
    assert "The SMS text is 2 segments per person." in estimate
    assert "2 numbers (50.0%) have not been checked for +Message recently: they are counted as SMS" in estimate
    assert "Send to 4 recipients" in dialog


def test_the_estimate_says_when_a_price_is_missing(client, priced):
    priced.cm.prices.all().delete()
    contact_list, _people = audience(priced.org, ["a"])
    campaign = approved_campaign(priced)
    campaign.audience_lists.add(contact_list)
    body = login(client, member(priced.org, Role.OWNER)).get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert 'id="cost-unpriced"' in body and "no price set" in body


def test_the_estimate_is_in_japanese(client, priced):
    contact_list, _people = audience(priced.org, ["a"])
    campaign = approved_campaign(priced)
    campaign.audience_lists.add(contact_list)
    user = member(priced.org, Role.MARKETER)
    body = login(client, user, "ja").get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    estimate = body[body.index('id="cost-estimate"'):]
    assert "概算費用" in estimate and "¥6.6" in estimate
    assert "SMSとして計算" in estimate


def test_no_estimate_before_approval_or_without_an_audience(client, priced):
    owner = member(priced.org, Role.OWNER)
    contact_list, _people = audience(priced.org, ["a"])
    draft = approved_campaign(priced, status=CampaignStatus.DRAFT, approved_by=None, approved_at=None)
    draft.audience_lists.add(contact_list)
    login(client, owner)
    assert 'id="cost-estimate"' not in client.get(reverse("campaigns:detail", args=[draft.pk])).content.decode()
    no_audience = approved_campaign(priced)
    assert 'id="cost-estimate"' not in client.get(reverse("campaigns:detail", args=[no_audience.pk])).content.decode()


def running(priced, status=CampaignStatus.RUNNING):
    return approved_campaign(priced, status=status, started_at=timezone.now())


def test_the_monitor_shows_the_cost_so_far(client, priced):
    campaign = running(priced)
    now = timezone.now()
    DeliveryFactory(campaign=campaign, channel=Channel.RCS, carrier="docomo", status=DeliveryStatus.READ, sent_at=now)
    DeliveryFactory(campaign=campaign, channel=Channel.SMS, carrier="rakuten", sms_segments=2,
                    status=DeliveryStatus.SENT, sent_at=now)
    DeliveryFactory(campaign=campaign)  # still queued
    operator = member(priced.org, Role.OPERATOR)
    body = login(client, operator).get(reverse("campaigns:monitor", args=[campaign.pk])).content.decode()
    card = body[body.index('id="monitor-cost"'):]
    card = card[:card.index("</section>")]
    assert "Cost so far" in card and "¥21.1" in card  # 3.5 + 2 × 8.8
    assert "Rakuten Mobile" in card and "docomo" in card
    assert 'hx-trigger="every 30s"' in card
    partial = client.get(reverse("campaigns:monitor_cost", args=[campaign.pk]))
    assert partial.status_code == 200 and "¥21.1" in partial.content.decode()


def test_the_monitors_cost_stops_polling_when_the_campaign_is_finished(client, priced):
    campaign = running(priced, status=CampaignStatus.COMPLETED)
    login(client, member(priced.org, Role.OWNER))
    response = client.get(reverse("campaigns:monitor_cost", args=[campaign.pk]))
    assert response.status_code == 286
    body = response.content.decode()
    assert "hx-trigger" not in body and "Nothing has been sent yet" in body


def test_viewers_do_not_see_the_monitors_cost(client, priced):
    campaign = running(priced)
    login(client, member(priced.org, Role.VIEWER))
    assert client.get(reverse("campaigns:monitor_cost", args=[campaign.pk])).status_code == 403
