"""Freezing an audience chosen by segments: evaluated at the freeze, under the same eligibility rules."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Classification, ContactListMembership, CustomField, FieldKind, Segment
from campaigns.segments import segment_save
from messaging.engine import freeze
from messaging.models import CampaignEngagement, Delivery, EngagementKind
from messaging.runs import campaign_new_run
from messaging.stats import campaign_stats
from tests.campaigns.factories import CampaignFactory, ConsentFactory, ContactFactory, ContactListFactory

pytestmark = pytest.mark.django_db


def frozen_names(campaign):
    while not freeze.audience_freeze_chunk(campaign, chunk=3):
        pass
    return set(Delivery.objects.filter(campaign=campaign).values_list("contact__name", flat=True))


@pytest.fixture
def setup():
    campaign = CampaignFactory(classification=Classification.PROMOTION)
    org = campaign.organization
    CustomField.objects.create(organization=org, key="rank", label="rank", kind=FieldKind.CHOICE,
                               choices=["ゴールド", "シルバー"])
    people = {}
    for name, rank, consent, opted_out in [
        ("gold", "ゴールド", True, False),
        ("gold-no-consent", "ゴールド", False, False),
        ("gold-opted-out", "ゴールド", True, True),
        ("gold-vip", "ゴールド", True, False),
        ("silver", "シルバー", True, False),
    ]:
        contact = ContactFactory(organization=org, name=name, attributes={"rank": rank},
                                 opted_out_at=timezone.now() if opted_out else None)
        ContactFactory(name=f"stranger-{name}", attributes={"rank": rank})  # another organization
        if consent:
            ConsentFactory(contact=contact)
        people[name] = contact
    gold = segment_save(Segment(organization=org, name="gold", match="all"),
                        [{"type": "field", "field": "rank", "op": "eq", "value": "ゴールド"}])
    return campaign, org, people, gold


def test_a_segment_audience_keeps_consent_and_opt_out_rules(setup):
    campaign, _org, _people, gold = setup
    campaign.audience_segments.add(gold)
    assert frozen_names(campaign) == {"gold", "gold-vip"}
    stats = campaign_stats(campaign)
    assert (stats["targeted"], stats["skipped_opted_out"], stats["skipped_no_consent"]) == (2, 1, 1)


def test_segments_and_lists_add_up_and_exclusions_take_away(setup):
    campaign, org, people, gold = setup
    vips = ContactListFactory(organization=org)
    ContactListMembership.objects.create(contact_list=vips, contact=people["gold-vip"])
    silver_list = ContactListFactory(organization=org)
    ContactListMembership.objects.create(contact_list=silver_list, contact=people["silver"])
    in_vips = segment_save(Segment(organization=org, name="vips", match="all"),
                           [{"type": "list", "op": "in", "list": vips.pk}])
    campaign.audience_segments.add(gold)
    campaign.audience_lists.add(silver_list)
    campaign.exclusion_segments.add(in_vips)
    assert frozen_names(campaign) == {"gold", "silver"}


def test_a_transactional_campaign_reaches_every_match(setup):
    campaign, _org, _people, gold = setup
    campaign.classification = Classification.TRANSACTION
    campaign.save()
    campaign.audience_segments.add(gold)
    assert frozen_names(campaign) == {"gold", "gold-no-consent", "gold-opted-out", "gold-vip"}


def test_each_recurring_run_reaches_who_matches_at_that_run(setup):
    parent, org, people, _gold = setup
    clicked = segment_save(Segment(organization=org, name="clicked", match="all"), [
        {"type": "engagement", "action": "clicked", "op": "did", "campaign": None, "days": 30}])
    parent.recurrence = "0 10 * * 1"
    parent.approved_by, parent.approved_at = parent.created_by, timezone.now()
    parent.save()
    parent.audience_segments.add(clicked)
    earlier = CampaignFactory(organization=org)
    CampaignEngagement.objects.create(campaign=earlier, contact=people["gold"], kind=EngagementKind.CLICKED)

    first = campaign_new_run(parent)
    first.started_at = timezone.now()
    first.save()
    assert frozen_names(first) == {"gold"}

    CampaignEngagement.objects.create(campaign=earlier, contact=people["silver"], kind=EngagementKind.CLICKED)
    old = CampaignEngagement.objects.get(contact=people["gold"])
    CampaignEngagement.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    second = campaign_new_run(parent)
    second.started_at = timezone.now()
    second.save()
    assert frozen_names(second) == {"silver"}
