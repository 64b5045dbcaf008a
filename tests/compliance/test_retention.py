"""Retention: per-organization settings with safe defaults and minimums, the daily job that applies
them (and the fixed useful lives) in batches, and the settings page that says what is kept."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import (
    ApiKey,
    IdempotencyRecord,
    Organization,
    Role,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from audit.models import AuditEvent
from campaigns.models import Consent, Contact
from campaigns.optout import contact_erase
from messaging import retention, tasks
from messaging.models import ConversationMessage, Delivery, DeliveryStatus, ProviderEvent
from tests.accounts.factories import member
from tests.campaigns.factories import ConsentFactory, ContactFactory
from tests.compliance.conftest import Person
from tests.messaging.factories import DeliveryFactory

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def age(person, days):
    """Make everything of ``person``'s inbox and single messages ``days`` old."""
    then = timezone.now() - days * DAY
    ConversationMessage.objects.filter(conversation__contact=person.contact).update(created_at=then)
    Delivery.objects.filter(contact=person.contact).update(created_at=then)


def test_retention_defaults_are_safe_and_the_database_refuses_less_than_three_years(person):
    organization = Organization.objects.get(pk=person.organization.pk)
    assert organization.retention_message_days == 365 and organization.retention_consent_years == 3
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.filter(pk=organization.pk).update(retention_consent_years=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.filter(pk=organization.pk).update(retention_message_days=0)


def test_retention_removes_old_message_bodies_and_conversations_in_batches(
    person, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(retention, "BATCH", 2)  # 4 inbox messages: several batches
    Organization.objects.filter(pk=person.organization.pk).update(retention_message_days=30)
    recent = Person(person.organization, tag="recent")  # same organization, 10 days old: kept
    default = Person(tag="default")  # another organization, 365 days (default), 40 days old: kept
    try:
        age(person, 40)
        age(recent, 10)
        age(default, 40)
        with django_capture_on_commit_callbacks(execute=True):
            counts = retention.retention_apply()
        assert counts["conversation_messages"] == 4 and counts["message_bodies"] == 1
        assert not ConversationMessage.objects.filter(conversation__contact=person.contact).exists()
        assert not person.storage.exists(person.file_name)
        assert Delivery.objects.get(pk=person.single_done.pk).content is None
        assert Delivery.objects.get(pk=person.single_done.pk).sms_text == ""
        assert Delivery.objects.get(pk=person.single_queued.pk).content is not None  # not finished
        assert Consent.objects.filter(pk=person.consent.pk).exists()
        for kept in (recent, default):
            assert ConversationMessage.objects.filter(conversation__contact=kept.contact).count() == 4
            assert kept.storage.exists(kept.file_name)
            assert Delivery.objects.get(pk=kept.single_done.pk).content is not None
    finally:
        for other in (recent, default):
            other.storage.delete(other.file_name)


def test_retention_deletes_an_erased_person_only_after_the_consent_period():
    long_ago = timezone.now() - 4 * 365 * DAY
    old_erased, old_kept_contact, recent_erased = ContactFactory(), ContactFactory(), ContactFactory()
    for contact in (old_erased, old_kept_contact):
        ConsentFactory(contact=contact, granted_at=long_ago)
    # a promotion relied on the old consent (Delivery.consent is PROTECT): deleted together with it
    relied = DeliveryFactory(organization=old_erased.organization, contact=old_erased,
                             campaign__organization=old_erased.organization,
                             consent=Consent.objects.get(contact=old_erased), channel="sms", status=DeliveryStatus.READ)
    contact_erase(old_erased)
    contact_erase(recent_erased)
    Consent.objects.update(revoked_at=long_ago + DAY, revoke_method="keyword")
    Contact.objects.filter(pk__in=[old_erased.pk, old_kept_contact.pk]).update(opted_out_at=long_ago + DAY)
    Contact.objects.filter(pk=old_erased.pk).update(erased_at=long_ago + 2 * DAY)
    ConsentFactory(contact=recent_erased, granted_at=long_ago)
    Consent.objects.filter(contact=recent_erased).update(revoked_at=timezone.now(), revoke_method="erasure")

    Organization.objects.filter(pk=old_erased.organization_id).update(retention_consent_years=5)
    assert retention.retention_apply()["erased_contacts"] == 0  # 4 years < 5 years
    assert Contact.objects.filter(pk=old_erased.pk).exists()

    Organization.objects.filter(pk=old_erased.organization_id).update(retention_consent_years=3)
    assert retention.retention_apply()["erased_contacts"] == 1
    assert not Contact.objects.filter(pk=old_erased.pk).exists()
    assert not Delivery.objects.filter(pk=relied.pk).exists() and not Consent.objects.filter(contact_id=old_erased.pk).exists()
    assert Contact.objects.filter(pk=old_kept_contact.pk).exists()  # not erased: a contact keeps its history
    assert Contact.objects.filter(pk=recent_erased.pk).exists()  # its history ended today
    assert Consent.objects.filter(contact=recent_erased).exists()


def test_retention_removes_what_is_past_its_useful_life(person):
    now = timezone.now()
    old_applied = ProviderEvent.objects.create(provider="cm", event_id="old", payload={}, applied_at=now - 31 * DAY)
    old_pending = ProviderEvent.objects.create(provider="cm", event_id="pending", payload={})
    ProviderEvent.objects.filter(pk=old_pending.pk).update(received_at=now - 40 * DAY)
    ProviderEvent.objects.create(provider="cm", event_id="fresh", payload={}, applied_at=now - DAY)
    key, _secret = ApiKey.generate(person.organization, "k", ["send"])
    old_record = IdempotencyRecord.objects.create(api_key=key, key="a", request_hash="x", created_at=now - 8 * DAY)
    new_record = IdempotencyRecord.objects.create(api_key=key, key="b", request_hash="x", created_at=now - DAY)
    endpoint = WebhookEndpoint.objects.create(
        organization=person.organization, url="https://hooks.example.jp/x", events=["message.sent"], secret="s"
    )
    old_done = WebhookDelivery.objects.create(endpoint=endpoint, event_type="message.sent", payload={},
                                              status="succeeded", created_at=now - 31 * DAY)
    WebhookAttempt.objects.create(delivery=old_done, status_code=200)
    old_pending_hook = WebhookDelivery.objects.create(endpoint=endpoint, event_type="message.sent", payload={},
                                                      created_at=now - 31 * DAY)
    new_done = WebhookDelivery.objects.create(endpoint=endpoint, event_type="message.sent", payload={},
                                              status="failed", created_at=now - DAY)

    counts = retention.retention_apply()

    assert counts["provider_events"] == 1  # the person's event was applied just now: kept
    assert not ProviderEvent.objects.filter(pk=old_applied.pk).exists()
    assert set(ProviderEvent.objects.values_list("event_id", flat=True)) >= {"pending", "fresh"}
    assert not IdempotencyRecord.objects.filter(pk=old_record.pk).exists()
    assert IdempotencyRecord.objects.filter(pk=new_record.pk).exists()
    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {old_pending_hook.pk, new_done.pk}
    assert not WebhookAttempt.objects.filter(delivery_id=old_done.pk).exists()


def test_retention_runs_daily_through_its_task(person):
    entry = settings.CELERY_BEAT_SCHEDULE["messaging-retention"]
    assert entry["task"] == tasks.apply_retention.name == "messaging.tasks.apply_retention"
    Organization.objects.filter(pk=person.organization.pk).update(retention_message_days=7)
    age(person, 8)
    result = tasks.apply_retention.apply().get()
    assert result["conversation_messages"] == 4
    assert not ConversationMessage.objects.filter(conversation__contact=person.contact).exists()


def test_retention_settings_page_says_what_is_kept_and_refuses_less_than_three_years(client, person):
    admin = member(person.organization, Role.ADMIN)
    client.force_login(admin)
    page = client.get(reverse("accounts:retention")).content.decode()
    assert "365 days" in page and "3 years after the last of it" in page and "30 days after they are applied" in page

    refused = client.post(reverse("accounts:retention"), {"message_days": "90", "consent_years": "2"})
    assert refused.status_code == 200
    assert "must be kept at least 3 years" in refused.content.decode()
    organization = Organization.objects.get(pk=person.organization.pk)
    assert (organization.retention_message_days, organization.retention_consent_years) == (365, 3)  # nothing half-written

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    refused_ja = client.post(reverse("accounts:retention"), {"message_days": "3", "consent_years": "1"})
    assert "少なくとも3年" in refused_ja.content.decode() and "7〜3650日" in refused_ja.content.decode()
    del client.cookies[settings.LANGUAGE_COOKIE_NAME]

    saved = client.post(reverse("accounts:retention"), {"message_days": "90", "consent_years": "5"})
    assert saved.status_code == 302
    organization.refresh_from_db()
    assert (organization.retention_message_days, organization.retention_consent_years) == (90, 5)
    event = AuditEvent.objects.get(action="settings.retention")
    assert event.actor_id == admin.pk and event.details["after"] == {"message_days": 90, "consent_years": 5}
    with translation.override("en"):
        assert "90 days" in client.get(reverse("accounts:retention")).content.decode()


@pytest.mark.parametrize("role", [Role.MARKETER, Role.OPERATOR, Role.VIEWER])
def test_retention_settings_are_for_owners_and_admins(client, person, role):
    client.force_login(member(person.organization, role))
    assert client.post(reverse("accounts:retention"), {"message_days": "30", "consent_years": "3"}).status_code == 403
    assert Organization.objects.get(pk=person.organization.pk).retention_message_days == 365
