"""Database rules of deliveries: one per (campaign, contact), and a status that only moves forward —
enforced by PostgreSQL itself (a trigger), whichever way the UPDATE is issued."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from messaging.models import Channel, Delivery, DeliveryStatus, FallbackReason, ProviderEvent
from tests.accounts.factories import OfficialAccountFactory
from tests.campaigns.factories import CampaignFactory, ContactFactory
from tests.messaging.factories import DeliveryFactory

pytestmark = pytest.mark.django_db

S = DeliveryStatus


def refused(change):
    with pytest.raises(IntegrityError), transaction.atomic():
        change()


def status_in_db(delivery):
    return Delivery.objects.values_list("status", flat=True).get(pk=delivery.pk)


# --- One delivery per (campaign, contact) -------------------------------------------------------


def test_one_delivery_per_campaign_and_contact():
    delivery = DeliveryFactory()
    refused(
        lambda: Delivery.objects.create(
            organization=delivery.organization, campaign=delivery.campaign, contact=delivery.contact
        )
    )


def test_same_contact_in_another_campaign_is_allowed():
    delivery = DeliveryFactory()
    other_campaign = CampaignFactory(organization=delivery.organization)
    Delivery.objects.create(organization=delivery.organization, campaign=other_campaign, contact=delivery.contact)


def test_single_messages_without_campaign_may_repeat_per_contact():
    contact = ContactFactory()
    account = OfficialAccountFactory(organization=contact.organization)
    for _ in range(2):
        Delivery.objects.create(
            organization=contact.organization, contact=contact, official_account=account, content={"text": "a"}
        )
    assert Delivery.objects.filter(contact=contact, campaign=None).count() == 2


def test_uuid_is_unique_and_generated():
    first, second = DeliveryFactory(), DeliveryFactory()
    assert first.uuid != second.uuid
    refused(lambda: Delivery.objects.filter(pk=second.pk).update(uuid=first.uuid))


# --- Status moves forward only ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "lower"),
    [(S.SENT, S.QUEUED), (S.DELIVERED, S.SENT), (S.READ, S.DELIVERED), (S.READ, S.QUEUED), (S.FAILED, S.SENT), (S.CANCELLED, S.QUEUED)],
)
def test_lowering_status_with_save_is_refused(start, lower):
    delivery = DeliveryFactory(status=start, channel=Channel.RCS)
    delivery.status = lower
    refused(delivery.save)
    assert status_in_db(delivery) == start


@pytest.mark.parametrize(("start", "lower"), [(S.DELIVERED, S.SENT), (S.READ, S.SENT)])
def test_lowering_status_with_queryset_update_is_refused(start, lower):
    delivery = DeliveryFactory(status=start, channel=Channel.RCS)
    refused(lambda: Delivery.objects.filter(pk=delivery.pk).update(status=lower))
    assert status_in_db(delivery) == start


def test_lowering_status_with_raw_sql_is_refused():
    delivery = DeliveryFactory(status=S.READ, channel=Channel.RCS)

    def lower():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE messaging_delivery SET status = %s WHERE id = %s", [S.QUEUED, delivery.pk])

    refused(lower)
    assert status_in_db(delivery) == S.READ


def test_one_lowered_row_refuses_the_whole_bulk_update():
    forward = DeliveryFactory(status=S.SENT, channel=Channel.RCS)
    backward = DeliveryFactory(status=S.READ, channel=Channel.RCS)
    refused(lambda: Delivery.objects.filter(pk__in=[forward.pk, backward.pk]).update(status=S.DELIVERED))
    assert status_in_db(forward) == S.SENT
    assert status_in_db(backward) == S.READ


def test_raising_status_works_step_by_step():
    delivery = DeliveryFactory()
    delivery.channel = Channel.RCS
    for status in (S.SENT, S.DELIVERED, S.READ):
        delivery.status = status
        delivery.save()
        assert status_in_db(delivery) == status


def test_raising_status_with_queryset_update_works():
    deliveries = [DeliveryFactory(channel=Channel.SMS) for _ in range(3)]
    updated = Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(status=S.DELIVERED)
    assert updated == 3
    assert set(Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).values_list("status", flat=True)) == {S.DELIVERED}


def test_same_status_and_other_columns_may_still_change():
    delivery = DeliveryFactory(status=S.DELIVERED, channel=Channel.RCS)
    Delivery.objects.filter(pk=delivery.pk).update(status=S.DELIVERED, read_at=None, error_code="")
    delivery.error_reason = "note"
    delivery.save()  # saves every column, status unchanged
    assert status_in_db(delivery) == S.DELIVERED


def test_conditional_forward_update_is_a_no_op_when_already_further():
    """The receipts pattern: only move rows whose status is lower, so a late DELIVERED after READ is dropped."""
    delivery = DeliveryFactory(status=S.READ, channel=Channel.RCS)
    assert Delivery.objects.filter(pk=delivery.pk, status__lt=S.DELIVERED).update(status=S.DELIVERED) == 0
    assert status_in_db(delivery) == S.READ


# --- Other delivery constraints -----------------------------------------------------------------


def test_status_value_must_be_known():
    refused(lambda: DeliveryFactory(status=25, channel=Channel.RCS))


def test_channel_must_be_known():
    refused(lambda: DeliveryFactory(channel="mms"))


def test_sent_needs_a_channel():
    refused(lambda: DeliveryFactory(status=S.SENT, channel=""))
    DeliveryFactory(status=S.FAILED, channel="")  # failed before any send


def test_fallback_reason_means_sms():
    refused(lambda: DeliveryFactory(channel=Channel.RCS, fallback_reason=FallbackReason.TTL_EXPIRED))
    DeliveryFactory(channel=Channel.SMS, fallback_reason=FallbackReason.TTL_EXPIRED, status=S.SENT, sent_at=timezone.now())


def test_single_message_needs_an_official_account():
    contact = ContactFactory()
    refused(lambda: Delivery.objects.create(organization=contact.organization, contact=contact))


def test_provider_event_unique_per_provider():
    ProviderEvent.objects.create(provider="rbm", event_id="e-1", payload={})
    refused(lambda: ProviderEvent.objects.create(provider="rbm", event_id="e-1", payload={}))
    ProviderEvent.objects.create(provider="cm", event_id="e-1", payload={})


SQLITE_PROBE = r"""
import django
django.setup()
from django.db import IntegrityError, connection
from accounts.models import OfficialAccount, Organization
from campaigns.models import Contact
from messaging.models import Delivery

assert connection.vendor == "sqlite", connection.vendor
org = Organization.objects.create(name="embedded", slug="embedded")
account = OfficialAccount.objects.create(organization=org, display_name="a", legal_name="a", sms_sender_id="A")
contact = Contact.objects.create(organization=org, phone="+819012345678")
delivery = Delivery.objects.create(organization=org, contact=contact, official_account=account, channel="rcs")
Delivery.objects.filter(pk=delivery.pk).update(status=40)
try:
    Delivery.objects.filter(pk=delivery.pk).update(status=20)
except IntegrityError:
    print("refused", Delivery.objects.get(pk=delivery.pk).status)
else:
    print("accepted", Delivery.objects.get(pk=delivery.pk).status)
"""


@pytest.mark.django_db(False)
def test_embedded_sqlite_has_the_forward_only_trigger_too(tmp_path):
    """The embedded default (docs/architecture.md, "Two ways to run") runs the same migration on SQLite."""
    import subprocess
    import sys

    from django.conf import settings

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "t" * 40 + "0123456789"}
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stderr
    probe = subprocess.run([sys.executable, "-c", SQLITE_PROBE], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["refused", "40"]
