"""messaging.costs: the estimate before launch (audience, cached capability, SMS segments as sent),
the actual cost of a campaign and the monthly usage — all priced by accounts.pricing.message_cost."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.compliance import TOKYO
from campaigns.models import Classification
from core import throttle
from messaging import costs
from messaging.costs import campaign_actual_cost, campaign_cost_estimate, monthly_usage
from messaging.models import Channel, DeliveryStatus
from tests.campaigns.factories import CampaignFactory
from tests.messaging.cost_fixtures import TWO_SEGMENT_SMS, audience, priced_organization
from tests.messaging.factories import DeliveryFactory

pytestmark = pytest.mark.django_db


def lines(summary):
    return {(line.channel, line.carrier): (line.messages, line.segments, line.cost, line.unpriced)
            for line in summary.lines}


def test_the_estimate_uses_cached_capability_and_counts_unknown_numbers_as_sms():
    p = priced_organization()
    contact_list, people = audience(p.org, ["a", "b", "c", "d", "e"])
    campaign = CampaignFactory(organization=p.org, official_account=p.account, sms_text=TWO_SEGMENT_SMS)
    throttle.cache_capabilities(p.rbm.pk, {
        people[0].phone: (True, "docomo"),
        people[1].phone: (True, "au"),
        people[2].phone: (False, "rakuten"),
        people[3].phone: (True, ""),  # capable, carrier not named: every carrier approved the account
    })
    estimate = campaign_cost_estimate(campaign, [contact_list.pk], [], 5)
    assert lines(estimate) == {
        ("rcs", ""): (1, 0, Decimal("4.0"), 0),
        ("rcs", "au"): (1, 0, Decimal("4.0"), 0),
        ("rcs", "docomo"): (1, 0, Decimal("3.5"), 0),
        ("sms", ""): (1, 2, Decimal("6.6"), 0),  # people[4]: unknown, counted as SMS
        ("sms", "rakuten"): (1, 2, Decimal("17.6"), 0),
    }
    assert estimate.total == Decimal("35.7")
    assert (estimate.unknown, estimate.examined, estimate.sampled) == (1, 5, False)
    assert estimate.rcs_share_percent == 60.0
    assert estimate.sms_segments == 4 and estimate.segments_per_sms == (2, 2)


def test_a_carrier_that_has_not_approved_the_account_counts_as_sms():
    p = priced_organization()
    p.account.reviews.filter(carrier="au").update(status="rejected", reason="審査中の指摘")
    contact_list, people = audience(p.org, ["a"])
    campaign = CampaignFactory(organization=p.org, official_account=p.account, sms_text="発送しました")
    throttle.cache_capabilities(p.rbm.pk, {people[0].phone: (True, "au")})
    estimate = campaign_cost_estimate(campaign, [contact_list.pk], [], 1)
    assert lines(estimate) == {("sms", "au"): (1, 1, Decimal("3.3"), 0)}
    assert estimate.unknown == 0


def test_the_sms_segments_are_those_of_each_persons_text_as_sent():
    p = priced_organization()
    # 60 characters and the name: 「短」 stays in one segment, a 20-character name makes it two.
    contact_list, _people = audience(p.org, ["短", "寿限無寿限無五劫の擦り切れ海砂利水魚の水行末"])
    campaign = CampaignFactory(organization=p.org, official_account=p.account,
                               sms_text="{{name}}様 " + "あ" * 60)
    estimate = campaign_cost_estimate(campaign, [contact_list.pk], [], 2)
    assert estimate.segments_per_sms == (1, 2)
    assert lines(estimate) == {("sms", ""): (2, 3, Decimal("9.9"), 0)}


def test_a_promotion_estimates_only_the_people_it_may_reach():
    p = priced_organization()
    contact_list, people = audience(p.org, ["a", "b"])
    from tests.campaigns.factories import ConsentFactory

    ConsentFactory(contact=people[0])  # people[1] has no consent: left out of a promotion
    campaign = CampaignFactory(organization=p.org, official_account=p.account, sms_text="セール",
                               classification=Classification.PROMOTION)
    estimate = campaign_cost_estimate(campaign, [contact_list.pk], [], 1)
    assert estimate.examined == 1 and estimate.sms_messages == 1


def test_a_large_audience_is_estimated_from_a_sample(monkeypatch):
    monkeypatch.setattr(costs, "ESTIMATE_SAMPLE", 2)
    p = priced_organization()
    contact_list, people = audience(p.org, ["a", "b", "c", "d"])
    campaign = CampaignFactory(organization=p.org, official_account=p.account, sms_text="発送しました")
    throttle.cache_capabilities(p.rbm.pk, {people[0].phone: (True, "docomo")})
    estimate = campaign_cost_estimate(campaign, [contact_list.pk], [], 4)
    assert estimate.sampled and estimate.examined == 2
    assert lines(estimate) == {("rcs", "docomo"): (2, 0, Decimal("7.0"), 0), ("sms", ""): (2, 2, Decimal("6.6"), 0)}


def test_a_missing_price_is_reported_not_counted_as_zero():
    p = priced_organization()
    p.rbm.prices.all().delete()
    contact_list, people = audience(p.org, ["a", "b"])
    campaign = CampaignFactory(organization=p.org, official_account=p.account, sms_text="発送しました")
    throttle.cache_capabilities(p.rbm.pk, {people[0].phone: (True, "docomo")})
    estimate = campaign_cost_estimate(campaign, [contact_list.pk], [], 2)
    assert lines(estimate)[("rcs", "docomo")] == (1, 0, Decimal("0"), 1)
    assert estimate.total == Decimal("3.3")
    assert [line.channel for line in estimate.unpriced] == ["rcs"]


def sent(campaign, channel, carrier="", segments=0, **kwargs):
    values = {"campaign": campaign, "channel": channel, "carrier": carrier, "sms_segments": segments,
              "status": DeliveryStatus.DELIVERED, "sent_at": timezone.now()}
    values.update(kwargs)
    return DeliveryFactory(**values)


def test_the_actual_cost_prices_what_a_gateway_accepted():
    p = priced_organization()
    campaign = CampaignFactory(organization=p.org, official_account=p.account)
    sent(campaign, Channel.RCS, "docomo")
    sent(campaign, Channel.RCS, "au", status=DeliveryStatus.READ)
    sent(campaign, Channel.SMS, "", segments=2)
    sent(campaign, Channel.SMS, "", segments=0)  # a receipt recorded the send first: one segment
    sent(campaign, Channel.SMS, "rakuten", segments=3)
    sent(campaign, Channel.SMS, "", segments=1, sms_gateway=p.backup)  # through the backup: its price
    sent(campaign, Channel.SMS, "", status=DeliveryStatus.QUEUED, sent_at=None)  # not sent yet
    DeliveryFactory(campaign=campaign)  # no channel yet
    actual = campaign_actual_cost(campaign)
    assert lines(actual) == {
        ("rcs", "au"): (1, 0, Decimal("4.0"), 0),
        ("rcs", "docomo"): (1, 0, Decimal("3.5"), 0),
        ("sms", ""): (3, 4, Decimal("14.9"), 0),  # 3 segments at 3.3 and 1 at 5
        ("sms", "rakuten"): (1, 3, Decimal("26.4"), 0),
    }
    assert actual.total == Decimal("48.8")


def test_the_monthly_usage_counts_campaigns_and_single_messages_of_the_month():
    p = priced_organization()
    other_account = type(p.account).objects.create(
        organization=p.org, display_name="別店舗", legal_name="株式会社別店舗", sms_sender_id="OTHER",
        sms_gateway=p.cm,
    )
    campaign = CampaignFactory(organization=p.org, official_account=p.account)
    month_start = datetime(2026, 11, 1, tzinfo=TOKYO)
    sent(campaign, Channel.RCS, "docomo", sent_at=month_start)
    sent(campaign, Channel.SMS, "", segments=2, sent_at=month_start + timedelta(days=29, hours=23))
    sent(campaign, Channel.SMS, "", segments=2, sent_at=month_start - timedelta(seconds=1))  # October
    single = CampaignFactory(organization=p.org, official_account=p.account)
    single_delivery = sent(single, Channel.SMS, "au", segments=1, sent_at=month_start + timedelta(days=3))
    single_delivery.campaign = None
    single_delivery.official_account = other_account
    single_delivery.save()
    usage = monthly_usage(p.org, datetime(2026, 11, 15).date(), TOKYO)
    by_account = {item.account.display_name: lines(item) for item in usage.accounts}
    assert by_account == {
        p.account.display_name: {("rcs", "docomo"): (1, 0, Decimal("3.5"), 0), ("sms", ""): (1, 2, Decimal("6.6"), 0)},
        "別店舗": {("sms", "au"): (1, 1, Decimal("3.3"), 0)},
    }
    assert usage.organization.total == Decimal("13.4")
    only_other = monthly_usage(p.org, datetime(2026, 11, 1).date(), TOKYO, other_account.pk)
    assert [item.account for item in only_other.accounts] == [other_account]
    assert only_other.organization.total == Decimal("3.3")


def test_the_actual_cost_is_shared_for_max_age_seconds():
    p = priced_organization()
    campaign = CampaignFactory(organization=p.org, official_account=p.account)
    sent(campaign, Channel.RCS, "docomo")
    assert campaign_actual_cost(campaign, max_age=30).total == Decimal("3.5")
    sent(campaign, Channel.SMS, "", segments=1)
    assert campaign_actual_cost(campaign, max_age=30).total == Decimal("3.5")  # the shared result
    assert campaign_actual_cost(campaign).total == Decimal("6.8")  # read afresh
    cached = campaign_actual_cost(campaign, max_age=30)
    assert lines(cached) == {("rcs", "docomo"): (1, 0, Decimal("3.5"), 0)}
