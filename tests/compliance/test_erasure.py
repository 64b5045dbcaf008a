"""Erasure ("Erase personal data") on every path: the console and the API both call
campaigns.optout.contact_erase, which also removes the person's inbox (texts, files with their
stored bytes, locations) and keeps the consent and opt-out history."""

import pytest
from django.db import transaction
from django.urls import reverse

from accounts.models import Role
from audit.models import AuditEvent
from campaigns.models import Consent
from campaigns.optout import consent_ledger_lines, contact_erase
from messaging.models import Conversation, ConversationMessage, Delivery, ProviderEvent
from tests.accounts.factories import member
from tests.api.conftest import Tenant
from tests.compliance.conftest import Person

pytestmark = pytest.mark.django_db


def assert_erased(person):
    contact = person.contact
    contact.refresh_from_db()
    assert contact.name == "" and contact.attributes == {} and contact.opted_out_at is not None
    assert not Conversation.objects.filter(contact=contact).exists()
    assert not ConversationMessage.objects.filter(conversation__contact=contact).exists()
    assert not person.storage.exists(person.file_name)
    assert ProviderEvent.objects.get(pk=person.event.pk).payload == {"erased": True}
    done = Delivery.objects.get(pk=person.single_done.pk)
    assert done.content is None and done.sms_text == "" and done.status == person.single_done.status
    queued = Delivery.objects.get(pk=person.single_queued.pk)  # not finished: may still be sent, kept whole
    assert queued.content == person.single_queued.content
    assert Delivery.objects.filter(pk=person.campaign_delivery.pk).exists()
    consent = Consent.objects.get(pk=person.consent.pk)  # the ledger stays
    assert consent.source == "https://shop.example.jp/signup" and consent.revoked_at is not None
    ledger = "".join(consent_ledger_lines(contact))
    assert "contact.erased" in ledger and "contact.opted_out" in ledger


def assert_untouched(person):
    person.contact.refresh_from_db()
    assert person.contact.name.startswith("山田")
    assert ConversationMessage.objects.filter(conversation__contact=person.contact).count() == 4
    assert person.storage.exists(person.file_name)
    assert ProviderEvent.objects.get(pk=person.event.pk).payload["text"].startswith("明日")
    assert Delivery.objects.get(pk=person.single_done.pk).content is not None


def test_erasure_from_the_console_removes_inbox_texts_files_and_locations(
    client, person, bystander, django_capture_on_commit_callbacks
):
    assert person.storage.exists(person.file_name)
    client.force_login(member(person.organization, Role.ADMIN))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("consent_erase", args=[person.contact.pk]))
    assert response.status_code == 302
    assert_erased(person)
    assert_untouched(bystander)
    event = AuditEvent.objects.get(action="contact.erased", target_id=str(person.contact.pk))
    assert event.details["inbox_messages"] == 4 and event.details["inbox_files"] == 1


def test_erasure_through_the_api_takes_the_same_path(person, django_capture_on_commit_callbacks):
    tenant = Tenant("erasure")
    other = Person(tenant.organization, tag="api")
    try:
        api = tenant.client()
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(f"/api/v1/contacts/{other.contact.pk}/erase/", {}, format="json")
        assert response.status_code == 200
        assert_erased(other)
        assert_untouched(person)  # another organization's person
    finally:
        other.storage.delete(other.file_name)


def test_erasure_rolled_back_keeps_the_stored_file_then_erases(person, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            contact_erase(person.contact)
            raise RuntimeError("a later step failed")
    assert callbacks == []  # nothing deleted from storage for an erasure that did not commit
    assert_untouched(person)
    with django_capture_on_commit_callbacks(execute=True):
        contact_erase(person.contact)
    assert_erased(person)
