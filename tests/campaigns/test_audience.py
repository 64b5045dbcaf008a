"""campaigns.audience.audience_sample: whom the composer's preview shows — the people the send
would reach, by the launch's own eligibility rules (opted-out people never)."""

import pytest
from django.utils import timezone

from campaigns.audience import audience_sample
from campaigns.models import Classification, ContactListMembership
from campaigns.optout import OptOutMethod, contact_opt_out
from tests.accounts.factories import OrganizationFactory
from tests.campaigns.factories import ConsentFactory, ContactFactory, ContactListFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    organization = OrganizationFactory()
    members = ContactListFactory(organization=organization, name="会員")
    staff = ContactListFactory(organization=organization, name="社員")
    contacts = {}
    for name in ("同意あり", "停止済み", "同意なし", "社員"):
        contact = ContactFactory(organization=organization, name=name)
        ContactListMembership.objects.create(contact_list=members, contact=contact)
        contacts[name] = contact
    for name in ("同意あり", "停止済み", "社員"):
        ConsentFactory(contact=contacts[name])
    ContactListMembership.objects.create(contact_list=staff, contact=contacts["社員"])
    contact_opt_out(contacts["停止済み"], OptOutMethod.KEYWORD, "停止", confirm=False)
    return organization, members, staff, contacts


def names(contacts):
    return [contact.name for contact in contacts]


def test_a_promotion_previews_only_consenting_people_who_did_not_opt_out(people):
    organization, members, staff, _contacts = people
    assert names(audience_sample(organization, Classification.PROMOTION, [members.pk])) == ["同意あり", "社員"]
    assert names(audience_sample(organization, Classification.PROMOTION, [members.pk], [staff.pk])) == ["同意あり"]


def test_a_transactional_message_previews_without_consent_but_never_an_opted_out_person(people):
    organization, members, _staff, _contacts = people
    assert names(audience_sample(organization, Classification.TRANSACTION, [members.pk])) == [
        "同意あり", "同意なし", "社員"]


def test_without_lists_the_organizations_contacts_stand_in_by_the_same_rules(people):
    organization, _members, _staff, contacts = people
    ContactFactory(name="他社の人")  # another organization's contact is never shown
    assert names(audience_sample(organization, Classification.PROMOTION)) == ["同意あり", "社員"]
    contacts["同意あり"].opted_out_at = timezone.now()
    contacts["同意あり"].save(update_fields=["opted_out_at"])
    assert names(audience_sample(organization, Classification.TRANSACTION, limit=1)) == ["同意なし"]
