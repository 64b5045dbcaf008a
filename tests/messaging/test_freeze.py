"""Freezing a campaign's audience in chunks: each eligible contact once, the rest counted as skipped."""

import pytest
from django.utils import timezone

from campaigns.models import Classification, ContactListMembership
from messaging.engine import freeze
from messaging.models import Delivery
from messaging.stats import campaign_stats
from tests.campaigns.factories import CampaignFactory, ConsentFactory, ContactFactory, ContactListFactory

pytestmark = pytest.mark.django_db


def add(contact_list, contacts):
    ContactListMembership.objects.bulk_create(
        ContactListMembership(contact_list=contact_list, contact=contact) for contact in contacts
    )


def freeze_in_chunks(campaign, chunk):
    calls = 1
    while not freeze.audience_freeze_chunk(campaign, chunk=chunk):
        calls += 1
        assert calls < 100, "the freeze does not end"
    return calls


def test_a_promotion_freezes_each_eligible_contact_once_across_chunks():
    campaign = CampaignFactory(classification=Classification.PROMOTION)
    organization = campaign.organization
    audience = ContactListFactory(organization=organization)
    excluded = ContactListFactory(organization=organization)
    eligible, opted_out, unconsented, left_out, outsiders = [], [], [], [], []
    for i in range(24):  # the kinds interleave in id order, and other organizations' contacts too
        contact = ContactFactory(organization=organization)
        ContactFactory()  # another organization's contact between each of ours
        kind = i % 4
        if kind == 0:
            opted_out.append(contact)
            ConsentFactory(contact=contact)
            contact.opted_out_at = timezone.now()
            contact.save()
        elif kind == 1:
            unconsented.append(contact)
        elif kind == 2 and i % 8 == 2:
            left_out.append(contact)  # in the excluded list
            ConsentFactory(contact=contact)
        else:
            eligible.append(contact)
            ConsentFactory(contact=contact)
        if i % 6 != 5:
            add(audience, [contact])
        else:
            outsiders.append(contact)  # in no list at all
    add(excluded, left_out)
    campaign.audience_lists.add(audience)
    campaign.exclusion_lists.add(excluded)

    assert freeze_in_chunks(campaign, chunk=5) > 3
    campaign.refresh_from_db()
    assert campaign.audience_frozen_at is not None

    expected = {c.pk for c in eligible} - {c.pk for c in outsiders}
    frozen = list(Delivery.objects.filter(campaign=campaign).values_list("contact_id", "consent_id"))
    assert sorted(contact_id for contact_id, _ in frozen) == sorted(expected)
    assert all(consent_id is not None for _, consent_id in frozen)  # the consent relied on is kept
    stats = campaign_stats(campaign)
    assert stats["targeted"] == len(expected)
    assert stats["skipped_opted_out"] == len({c.pk for c in opted_out} - {c.pk for c in outsiders})
    assert stats["skipped_no_consent"] == len({c.pk for c in unconsented} - {c.pk for c in outsiders})

    assert freeze.audience_freeze_chunk(campaign, chunk=5) is True  # frozen: nothing more happens
    assert Delivery.objects.filter(campaign=campaign).count() == len(expected)


def test_a_small_list_in_a_large_organization_freezes_in_bounded_chunks():
    campaign = CampaignFactory()
    members = []
    for i in range(30):
        contact = ContactFactory(organization=campaign.organization)
        if i in (3, 17, 29):
            members.append(contact)
    audience = ContactListFactory(organization=campaign.organization)
    add(audience, members)
    campaign.audience_lists.add(audience)

    calls = freeze_in_chunks(campaign, chunk=4)
    assert calls >= 30 // 4  # the pages follow the organization's contacts, 4 at a time
    assert sorted(Delivery.objects.filter(campaign=campaign).values_list("contact_id", flat=True)) == sorted(
        c.pk for c in members
    )
    assert campaign_stats(campaign)["targeted"] == 3
