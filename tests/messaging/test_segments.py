"""Segments as query filters (messaging.segments): each kind of condition, all/any, engagement windows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Consent, ContactListMembership, SegmentMatch
from campaigns.segments import conditions_clean
from messaging.models import CampaignEngagement, Channel, DeliveryStatus, EngagementKind
from messaging.segments import segment_contacts, segment_count
from tests.accounts.factories import OrganizationFactory
from tests.campaigns.factories import CampaignFactory, ConsentFactory, ContactFactory, ContactListFactory
from tests.messaging.factories import DeliveryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return OrganizationFactory()


def people(org, match, conditions):
    cleaned, errors = conditions_clean(org.id, conditions)
    assert not errors
    return set(segment_contacts(org.id, match, cleaned).values_list("name", flat=True))


@pytest.fixture
def crowd(org):
    from campaigns.models import CustomField, FieldKind

    CustomField.objects.create(organization=org, key="rank", label="rank", kind=FieldKind.CHOICE,
                               choices=["ゴールド", "シルバー"])
    CustomField.objects.create(organization=org, key="points", label="points", kind=FieldKind.NUMBER)
    CustomField.objects.create(organization=org, key="birthday", label="birthday", kind=FieldKind.DATE)
    CustomField.objects.create(organization=org, key="store", label="store", kind=FieldKind.TEXT)
    gold = ContactFactory(organization=org, name="gold", carrier="docomo",
                          attributes={"rank": "ゴールド", "points": 1200, "birthday": "1990-05-01", "store": "東京本店"})
    silver = ContactFactory(organization=org, name="silver", carrier="au",
                            attributes={"rank": "シルバー", "points": 300, "birthday": "2001-01-10", "store": "大阪店"})
    plain = ContactFactory(organization=org, name="plain")
    opted = ContactFactory(organization=org, name="opted", opted_out_at=timezone.now(), attributes={"rank": "ゴールド"})
    ContactFactory(organization=OrganizationFactory(), name="stranger", attributes={"rank": "ゴールド"})
    return {"gold": gold, "silver": silver, "plain": plain, "opted": opted}


def test_field_conditions(org, crowd):
    assert people(org, "all", [{"type": "field", "field": "rank", "op": "eq", "value": "ゴールド"}]) == {"gold", "opted"}
    assert people(org, "all", [{"type": "field", "field": "rank", "op": "ne", "value": "ゴールド"}]) == {
        "silver", "plain"}  # "is not" includes people without a rank
    assert people(org, "all", [{"type": "field", "field": "points", "op": "gt", "value": "1,000"}]) == {"gold"}
    assert people(org, "all", [{"type": "field", "field": "points", "op": "lt", "value": "1000"}]) == {"silver"}
    assert people(org, "all", [{"type": "field", "field": "birthday", "op": "lt", "value": "2000/1/1"}]) == {"gold"}
    assert people(org, "all", [{"type": "field", "field": "store", "op": "contains", "value": "東京"}]) == {"gold"}
    assert people(org, "all", [{"type": "field", "field": "points", "op": "set"}]) == {"gold", "silver"}
    assert people(org, "all", [{"type": "field", "field": "points", "op": "not_set"}]) == {"plain", "opted"}


def test_all_and_any(org, crowd):
    conditions = [
        {"type": "field", "field": "rank", "op": "eq", "value": "ゴールド"},
        {"type": "opted_out", "op": "no"},
    ]
    assert people(org, SegmentMatch.ALL, conditions) == {"gold"}
    assert people(org, SegmentMatch.ANY, conditions) == {"gold", "silver", "plain", "opted"}
    assert people(org, SegmentMatch.ALL, []) == {"gold", "silver", "plain", "opted"}  # no conditions: everyone
    assert segment_count(org.id, SegmentMatch.ALL, []) == 4


def test_lists_consent_carrier_and_created(org, crowd):
    vip = ContactListFactory(organization=org)
    ContactListMembership.objects.create(contact_list=vip, contact=crowd["silver"])
    ConsentFactory(contact=crowd["gold"])
    ConsentFactory(contact=crowd["silver"], granted_at=timezone.now() - timedelta(days=1), revoked_at=timezone.now(), revoke_method="reply")
    assert people(org, "all", [{"type": "list", "op": "in", "list": vip.pk}]) == {"silver"}
    assert people(org, "all", [{"type": "list", "op": "not_in", "list": vip.pk}]) == {"gold", "plain", "opted"}
    assert people(org, "all", [{"type": "consent", "op": "active"}]) == {"gold"}
    assert people(org, "all", [{"type": "consent", "op": "none"}]) == {"silver", "plain", "opted"}
    assert people(org, "all", [{"type": "opted_out", "op": "yes"}]) == {"opted"}
    assert people(org, "all", [{"type": "carrier", "op": "eq", "value": "docomo"}]) == {"gold"}
    assert people(org, "all", [{"type": "carrier", "op": "eq", "value": ""}]) == {"plain", "opted"}
    crowd["plain"].__class__.objects.filter(pk=crowd["plain"].pk).update(
        created_at=timezone.now() - timedelta(days=40))
    assert "plain" not in people(org, "all", [{"type": "created", "op": "within_days", "value": 30}])
    assert people(org, "all", [{"type": "created", "op": "before", "value": (
        timezone.localdate() - timedelta(days=10)).isoformat()}]) == {"plain"}
    assert Consent.objects.count() == 2


def test_engagement_in_the_last_days(org, crowd):
    now = timezone.now()
    coupon = CampaignFactory(organization=org)
    other = CampaignFactory(organization=org)
    DeliveryFactory(campaign=coupon, contact=crowd["gold"], channel=Channel.RCS, status=DeliveryStatus.READ,
                    delivered_at=now - timedelta(days=2), read_at=now - timedelta(days=2))
    DeliveryFactory(campaign=other, contact=crowd["silver"], channel=Channel.SMS, status=DeliveryStatus.DELIVERED,
                    delivered_at=now - timedelta(days=45))
    CampaignEngagement.objects.create(campaign=coupon, contact=crowd["gold"], kind=EngagementKind.CLICKED)
    old = CampaignEngagement.objects.create(campaign=other, contact=crowd["silver"], kind=EngagementKind.REPLIED)
    CampaignEngagement.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=45))

    def who(action, days, campaign=None, op="did"):
        return people(org, "all", [{"type": "engagement", "action": action, "op": op, "days": days,
                                    "campaign": campaign.pk if campaign else None}])

    assert who("received", 30) == {"gold"}
    assert who("received", 60) == {"gold", "silver"}
    assert who("received", 60, other) == {"silver"}
    assert who("read", 30) == {"gold"}
    assert who("clicked", 30, coupon) == {"gold"}
    assert who("clicked", 30, other) == set()
    assert who("replied", 30) == set()
    assert who("replied", 60) == {"silver"}
    assert who("clicked", 30, op="did_not") == {"silver", "plain", "opted"}


def test_a_recurring_campaign_stands_for_its_runs(org, crowd):
    parent = CampaignFactory(organization=org, recurrence="0 10 * * 1")
    run = CampaignFactory(organization=org, parent=parent)
    CampaignEngagement.objects.create(campaign=run, contact=crowd["silver"], kind=EngagementKind.CLICKED)
    assert people(org, "all", [{"type": "engagement", "action": "clicked", "op": "did", "days": 7,
                                "campaign": parent.pk}]) == {"silver"}


def test_erased_contacts_never_match(org, crowd):
    crowd["plain"].__class__.objects.filter(pk=crowd["plain"].pk).update(erased_at=timezone.now())
    assert "plain" not in people(org, "all", [])
    assert "plain" not in people(org, "any", [{"type": "opted_out", "op": "no"}])
