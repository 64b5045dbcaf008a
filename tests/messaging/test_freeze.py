"""Freezing a campaign's audience in chunks: each eligible contact once, the rest counted as skipped."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Classification, ContactListMembership
from messaging.engine import freeze
from messaging.models import Delivery, DeliveryStatus
from messaging.stats import campaign_stats
from tests.accounts.factories import OrganizationFactory, approved_account
from tests.campaigns.factories import CampaignFactory, ConsentFactory, ContactFactory, ContactListFactory
from tests.messaging.factories import DeliveryFactory

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


# --- Frequency cap: "at most N promotions per person in D days" ------------------------------------


def cap(organization, count, days=7):
    organization.frequency_cap_count, organization.frequency_cap_days = count, days
    organization.save()


def promotion_with(organization, contacts, **kwargs):
    campaign = CampaignFactory(organization=organization, classification=Classification.PROMOTION, **kwargs)
    audience = ContactListFactory(organization=organization)
    add(audience, contacts)
    campaign.audience_lists.add(audience)
    return campaign


def consenting(organization, n):
    contacts = [ContactFactory(organization=organization) for _ in range(n)]
    for contact in contacts:
        ConsentFactory(contact=contact)
    return contacts


def given(contact, classification=Classification.PROMOTION, days_ago=0, status=DeliveryStatus.DELIVERED):
    """A promotion (or a transactional message) the contact got ``days_ago`` days ago."""
    delivery = DeliveryFactory(
        campaign=CampaignFactory(organization=contact.organization, classification=classification),
        contact=contact,
        status=status,
        channel="sms" if status != DeliveryStatus.QUEUED else "",
    )
    Delivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(days=days_ago, minutes=1)
    )
    return delivery


def test_people_over_the_frequency_cap_are_left_out_and_counted_with_their_reason():
    campaign = promotion_with(OrganizationFactory(), [])
    organization = campaign.organization
    cap(organization, 2, days=7)
    fresh, once, twice, thrice, long_ago = people = consenting(organization, 5)
    given(once)
    for _ in range(2):
        given(twice)
    for _ in range(3):
        given(thrice, days_ago=3)
    for _ in range(3):
        given(long_ago, days_ago=8)  # before the period: does not count
    unconsented_and_over = ContactFactory(organization=organization)
    for _ in range(2):
        given(unconsented_and_over)
    audience = campaign.audience_lists.get()
    add(audience, [*people, unconsented_and_over])

    freeze_in_chunks(campaign, chunk=2)

    frozen = set(Delivery.objects.filter(campaign=campaign).values_list("contact_id", flat=True))
    assert frozen == {fresh.pk, once.pk, long_ago.pk}
    stats = campaign_stats(campaign)
    assert stats["targeted"] == 3
    assert stats["skipped_frequency_cap"] == 2  # twice and thrice
    assert stats["skipped_no_consent"] == 1  # counted once, under its first reason


def test_transactional_messages_are_never_capped_and_never_count():
    organization = OrganizationFactory()
    cap(organization, 1)
    only_transactional, promoted = consenting(organization, 2)
    for _ in range(3):
        given(only_transactional, classification=Classification.TRANSACTION)
    given(promoted)

    promotion = promotion_with(organization, [only_transactional, promoted])
    freeze.audience_freeze(promotion)
    assert list(Delivery.objects.filter(campaign=promotion).values_list("contact_id", flat=True)) == [
        only_transactional.pk
    ]

    transactional = CampaignFactory(organization=organization, classification=Classification.TRANSACTION)
    transactional.audience_lists.add(promotion.audience_lists.get())
    freeze.audience_freeze(transactional)
    assert Delivery.objects.filter(campaign=transactional).count() == 2
    assert campaign_stats(transactional)["skipped_frequency_cap"] == 0


def test_failed_and_cancelled_promotions_and_single_promotions_count_as_they_reached_the_person():
    organization = OrganizationFactory()
    cap(organization, 1)
    failed, single, single_transactional = consenting(organization, 3)
    given(failed, status=DeliveryStatus.FAILED)
    given(failed, status=DeliveryStatus.CANCELLED)
    account = approved_account(organization)
    Delivery.objects.create(
        organization=organization,
        official_account=account,
        contact=single,
        classification=Classification.PROMOTION,
        sms_text="x",
    )
    Delivery.objects.create(
        organization=organization,
        official_account=account,
        contact=single_transactional,
        classification=Classification.TRANSACTION,
        sms_text="x",
    )

    campaign = promotion_with(organization, [failed, single, single_transactional])
    freeze.audience_freeze(campaign)
    frozen = set(Delivery.objects.filter(campaign=campaign).values_list("contact_id", flat=True))
    assert frozen == {failed.pk, single_transactional.pk}
    assert campaign_stats(campaign)["skipped_frequency_cap"] == 1


def test_without_a_cap_nobody_is_left_out_for_frequency():
    organization = OrganizationFactory()
    assert organization.frequency_cap_count is None  # off by default
    people = consenting(organization, 3)
    for person in people:
        for _ in range(5):
            given(person)
    campaign = promotion_with(organization, people)
    freeze.audience_freeze(campaign)
    assert Delivery.objects.filter(campaign=campaign).count() == 3


def test_each_recurring_run_applies_the_cap_at_its_own_freeze():
    organization = OrganizationFactory()
    cap(organization, 2)
    people = consenting(organization, 3)
    parent = promotion_with(organization, people, recurrence="0 10 * * 1")
    audience = parent.audience_lists.get()
    frozen_per_run = []
    for run in range(3):
        child = CampaignFactory(
            organization=organization,
            classification=Classification.PROMOTION,
            parent=parent,
            official_account=parent.official_account,
        )
        child.audience_lists.add(audience)
        if run == 1:
            given(people[0])  # one more promotion from elsewhere between the runs
        freeze.audience_freeze(child)
        frozen_per_run.append(
            set(Delivery.objects.filter(campaign=child).values_list("contact_id", flat=True))
        )
    everyone = {person.pk for person in people}
    assert frozen_per_run[0] == everyone
    assert frozen_per_run[1] == everyone - {people[0].pk}  # run 1 + the other promotion = 2
    assert frozen_per_run[2] == set()  # every one of them has had two promotions this week


def test_the_estimate_before_launch_counts_those_the_freeze_leaves_out():
    organization = OrganizationFactory()
    cap(organization, 1)
    fresh, over, opted_out_and_over = consenting(organization, 3)
    given(over)
    given(opted_out_and_over)
    opted_out_and_over.opted_out_at = timezone.now()
    opted_out_and_over.save()
    campaign = promotion_with(organization, [fresh, over, opted_out_and_over])
    list_id = campaign.audience_lists.get().pk

    estimate = freeze.audience_estimate(organization, Classification.PROMOTION, [list_id], [])
    assert estimate == {"total": 3, "eligible": 1, "opted_out": 1, "no_consent": 0, "frequency_cap": 1}
    transactional = freeze.audience_estimate(organization, Classification.TRANSACTION, [list_id], [])
    assert transactional["eligible"] == 3 and transactional["frequency_cap"] == 0

    freeze.audience_freeze(campaign)
    assert Delivery.objects.filter(campaign=campaign).count() == estimate["eligible"]
