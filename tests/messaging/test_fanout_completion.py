"""When a campaign completes, and the SMS legs that RCS expiry can still add after that.

In-process dispatch against the sandbox carrier over HTTP; no worker, so each step is the test's own.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus
from campaigns.status import campaign_transition
from messaging.counters import counters_fold
from messaging.engine.dispatch import dispatch_batch
from messaging.engine.freeze import audience_freeze_chunk
from messaging.engine.sweep import campaigns_needing_dispatch
from messaging.models import Channel, Delivery, DeliveryStatus, FallbackReason
from messaging.stats import campaign_stats
from tests.messaging.engine import engine, receiver  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


@pytest.fixture
def sent_over_rcs(engine):  # noqa: F811
    """A running one-person campaign whose RCS message was accepted and never delivered."""
    audience = engine.audience(1)
    phone = audience.contacts.get().phone
    engine.sandbox.profile(phone, "offline_device")
    campaign = campaign_transition(engine.campaign(audience, ttl=60), CampaignStatus.RUNNING)
    while not audience_freeze_chunk(campaign):
        pass
    assert dispatch_batch(campaign.pk) == "more"
    delivery = Delivery.objects.get(campaign=campaign)
    assert (delivery.channel, delivery.status) == (Channel.RCS, DeliveryStatus.SENT)
    return campaign, delivery, phone


def expire_into_sms_leg(delivery):
    """What a confirmed revoke or a TTL_EXPIRATION_REVOKED receipt does to the row."""
    Delivery.objects.filter(pk=delivery.pk).update(
        channel=Channel.SMS, fallback_reason=FallbackReason.TTL_EXPIRED, pending_fallback=True, lease_until=None
    )


def channels_received(sandbox, phone):
    """What reached the handset; an offline device never shows the RCS message."""
    return sorted(message["channel"] for message in sandbox.inbox(phone))


def test_a_revoke_landing_during_the_completion_check_does_not_complete_the_campaign(engine, sent_over_rcs):  # noqa: F811
    campaign, delivery, phone = sent_over_rcs
    moved = []

    def revoke_right_after_the_check(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        is_check = sql.lstrip().upper().startswith("SELECT") and "pending_fallback" in sql
        if is_check and not moved:
            moved.append(sql)
            expire_into_sms_leg(delivery)
        return result

    with connection.execute_wrapper(revoke_right_after_the_check):
        outcome = dispatch_batch(campaign.pk)
    assert moved, "the completion check never asked about SMS legs"
    campaign.refresh_from_db()
    assert (outcome, campaign.status) == ("idle", CampaignStatus.RUNNING)

    assert dispatch_batch(campaign.pk) == "more"
    assert engine.sandbox.wait_for(lambda: channels_received(engine.sandbox, phone) == ["sms"])
    delivery.refresh_from_db()
    assert (delivery.channel, delivery.pending_fallback) == (Channel.SMS, False)


def test_an_expiry_reported_after_completion_still_sends_the_sms_leg(engine, sent_over_rcs):  # noqa: F811
    campaign, delivery, phone = sent_over_rcs
    long_ago = timezone.now() - timedelta(seconds=campaign.ttl_seconds + settings.TTL_GRACE_SECONDS + 600)
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=long_ago)
    assert dispatch_batch(campaign.pk) == "done"
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED
    assert campaign.pk not in campaigns_needing_dispatch()

    expire_into_sms_leg(delivery)  # the platform's expiry receipt, late
    Campaign.objects.filter(pk=campaign.pk).update(last_dispatch_at=long_ago)  # and the chain it enqueued lost
    assert campaigns_needing_dispatch() == [campaign.pk]

    assert dispatch_batch(campaign.pk) == "more"
    assert engine.sandbox.wait_for(lambda: channels_received(engine.sandbox, phone) == ["sms"])
    assert dispatch_batch(campaign.pk) == "stopped"
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED
    Campaign.objects.filter(pk=campaign.pk).update(last_dispatch_at=long_ago)
    assert campaigns_needing_dispatch() == []

    counters_fold()
    stats = campaign_stats(campaign)
    assert stats["fallback_by_reason"][FallbackReason.TTL_EXPIRED] == 1
    assert stats["by_channel"]["sms"].get("sent") == 1
    assert stats["by_channel"]["rcs"].get("sent", 0) == 0


def test_legs_of_a_paused_or_cancelled_campaign_are_not_restarted_by_the_sweeper(engine, sent_over_rcs):  # noqa: F811
    campaign, delivery, _phone = sent_over_rcs
    expire_into_sms_leg(delivery)
    long_ago = timezone.now() - timedelta(minutes=5)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.PAUSED, last_dispatch_at=long_ago)
    assert campaigns_needing_dispatch() == []
    assert dispatch_batch(campaign.pk) == "stopped"
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.CANCELLED, finished_at=timezone.now())
    assert campaigns_needing_dispatch() == []
    assert dispatch_batch(campaign.pk) == "stopped"
