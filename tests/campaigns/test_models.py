"""Database constraints of the campaigns app: rows that bypass forms are still refused."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.models import (
    Campaign,
    CampaignStatus,
    Consent,
    Contact,
    ContactList,
    ContactListMembership,
)
from tests.accounts.factories import OrganizationFactory, UserFactory
from tests.campaigns.factories import CampaignFactory, ConsentFactory, ContactFactory, ContactListFactory

pytestmark = pytest.mark.django_db


def refused(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


# --- Contacts -----------------------------------------------------------------------------------


def test_phone_unique_per_organization():
    contact = ContactFactory(phone="+819012345678")
    refused(lambda: Contact.objects.create(organization=contact.organization, phone="+819012345678"))


def test_same_phone_in_another_organization_is_allowed():
    contact = ContactFactory(phone="+819012345678")
    other = Contact.objects.create(organization=OrganizationFactory(), phone="+819012345678")
    assert other.phone == contact.phone


@pytest.mark.parametrize("phone", ["+819012345678", "+818012345678", "+817012345678", "+816012345678"])
def test_phone_constraint_accepts_e164_mobiles(phone):
    ContactFactory(phone=phone)


@pytest.mark.parametrize(
    "phone",
    [
        "09012345678",  # national form
        "090-1234-5678",
        "+81312345678",  # landline
        "+815012345678",  # VoIP
        "+812012345678",  # M2M
        "+81901234567",  # too short
        "+8190123456789",  # too long
        "+12025550123",  # foreign
        "+81901234567a",
        "+819012345678\n",
        "",
    ],
)
def test_phone_constraint_refuses_anything_else(phone):
    refused(lambda: Contact.objects.create(organization=OrganizationFactory(), phone=phone))


def test_phone_constraint_holds_on_update():
    contact = ContactFactory()
    refused(lambda: Contact.objects.filter(pk=contact.pk).update(phone="090-1234-5678"))


# --- Lists --------------------------------------------------------------------------------------


def test_list_name_unique_per_org_and_purpose_valid():
    contact_list = ContactListFactory(name="会員")
    refused(lambda: ContactList.objects.create(organization=contact_list.organization, name="会員"))
    ContactListFactory(name="会員")
    refused(lambda: ContactListFactory(purpose="spam"))


def test_contact_in_a_list_once():
    contact_list = ContactListFactory()
    contact = ContactFactory(organization=contact_list.organization)
    ContactListMembership.objects.create(contact_list=contact_list, contact=contact)
    refused(lambda: ContactListMembership.objects.create(contact_list=contact_list, contact=contact))


# --- Consent ------------------------------------------------------------------------------------


def test_consent_valid_record():
    consent = ConsentFactory(evidence="フォーム送信ログ #123")
    assert consent.is_active


def test_consent_method_must_be_known():
    refused(lambda: ConsentFactory(method="guess"))


def test_consent_needs_wording_version_and_source():
    refused(lambda: ConsentFactory(wording_version=""))
    refused(lambda: ConsentFactory(source=""))


def test_consent_revocation_after_grant_with_method():
    consent = ConsentFactory()
    Consent.objects.filter(pk=consent.pk).update(revoked_at=consent.granted_at + timedelta(days=1), revoke_method="keyword")
    consent.refresh_from_db()
    assert not consent.is_active


def test_consent_revocation_before_grant_refused():
    consent = ConsentFactory()
    refused(
        lambda: Consent.objects.filter(pk=consent.pk).update(
            revoked_at=consent.granted_at - timedelta(seconds=1), revoke_method="keyword"
        )
    )


def test_consent_revocation_needs_a_method():
    consent = ConsentFactory()
    refused(lambda: Consent.objects.filter(pk=consent.pk).update(revoked_at=timezone.now()))


def test_consent_granted_at_required():
    refused(lambda: ConsentFactory(granted_at=None))


# --- Campaigns ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("ttl", "ok"), [(59, False), (60, True), (3600, True), (30 * 86400, True), (30 * 86400 + 1, False)])
def test_campaign_ttl_range(ttl, ok):
    if ok:
        CampaignFactory(ttl_seconds=ttl)
    else:
        refused(lambda: CampaignFactory(ttl_seconds=ttl))


@pytest.mark.parametrize(
    "status",
    [CampaignStatus.APPROVED, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.COMPLETED],
)
def test_approved_states_need_an_approver(status):
    extra = {"scheduled_at": timezone.now()} if status == CampaignStatus.SCHEDULED else {}
    refused(lambda: CampaignFactory(status=status, **extra))
    refused(lambda: CampaignFactory(status=status, approved_by=UserFactory(), **extra))  # no approved_at
    refused(lambda: CampaignFactory(status=status, approved_at=timezone.now(), **extra))  # no approved_by
    CampaignFactory(status=status, approved_by=UserFactory(), approved_at=timezone.now(), **extra)


@pytest.mark.parametrize(
    "status", [CampaignStatus.DRAFT, CampaignStatus.PENDING_APPROVAL, CampaignStatus.CANCELLED, CampaignStatus.FAILED]
)
def test_other_states_need_no_approver(status):
    CampaignFactory(status=status)


def test_approving_by_update_without_approver_is_refused():
    campaign = CampaignFactory(status=CampaignStatus.PENDING_APPROVAL)
    refused(lambda: Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.APPROVED))


def test_scheduled_needs_a_time_or_a_recurrence():
    approval = {"approved_by": UserFactory(), "approved_at": timezone.now()}
    refused(lambda: CampaignFactory(status=CampaignStatus.SCHEDULED, **approval))
    CampaignFactory(status=CampaignStatus.SCHEDULED, scheduled_at=timezone.now() + timedelta(hours=1), **approval)
    CampaignFactory(status=CampaignStatus.SCHEDULED, recurrence="0 10 * * 1", **approval)


def test_campaign_status_and_classification_must_be_known():
    refused(lambda: CampaignFactory(status="launched"))
    refused(lambda: CampaignFactory(classification="spam"))


def test_campaign_content_validated_by_full_clean():
    campaign = CampaignFactory(content={"text": "a", "chips": [{"type": "open_url", "label": "x", "url": "javascript:alert(1)"}]})
    with pytest.raises(ValidationError) as caught:
        campaign.full_clean()
    assert caught.value.message_dict["content"] == ["chips[0].url: Only http:// and https:// URLs are allowed."]
    campaign.content = {"text": "ご注文の商品を発送しました。"}
    campaign.full_clean()
