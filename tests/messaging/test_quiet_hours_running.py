"""Quiet hours hold promotions while they send, not only when they start: every claim asks
``campaigns.compliance.quiet_hours_hold`` — a running or resumed campaign's batches, its SMS
fallback legs, single promotional messages and the ones that would ride along with another single
message. Transactional messages are exempt.

The in-process tests set the organization's window around the real clock (no clock is mocked); the
last one runs a real worker while the window begins and ends a few seconds apart.
"""

from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import GatewayAccount, Role
from campaigns.compliance import TOKYO
from campaigns.models import Campaign, CampaignStatus, Classification, Contact
from campaigns.optout import consent_grant
from campaigns.status import campaign_transition
from core import throttle
from messaging.engine.dispatch import dispatch_batch, dispatch_chains_start, send_single
from messaging.engine.freeze import audience_freeze_chunk
from messaging.models import Channel, Delivery, DeliveryStatus, FallbackReason
from messaging.runs import campaign_pause, campaign_resume
from messaging.services import message_send
from tests.accounts.factories import member
from tests.messaging.engine import engine, receiver, wait_until, worker  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

P, T = Classification.PROMOTION, Classification.TRANSACTION
SENT_STATES = {DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ}


def local(moment: datetime):
    return timezone.localtime(moment, TOKYO).time()


def quiet_now(organization):
    """A window around the real current time: an hour before to an hour after."""
    now = timezone.now()
    organization.quiet_hours_start = local(now - timedelta(hours=1))
    organization.quiet_hours_end = local(now + timedelta(hours=1))
    organization.save(update_fields=["quiet_hours_start", "quiet_hours_end"])
    return now + timedelta(hours=1)


def not_quiet_now(organization):
    """A window that no longer covers now (it ended a minute ago)."""
    now = timezone.now()
    organization.quiet_hours_start = local(now - timedelta(hours=1))
    organization.quiet_hours_end = local(now - timedelta(minutes=1))
    organization.save(update_fields=["quiet_hours_start", "quiet_hours_end"])


def running(engine, count, classification=P, first=0):  # noqa: F811
    campaign = campaign_transition(
        engine.campaign(engine.audience(count, first=first), classification=classification), CampaignStatus.RUNNING
    )
    while not audience_freeze_chunk(campaign):
        pass
    return campaign


def phones_of(campaign):
    return list(Delivery.objects.filter(campaign=campaign).values_list("contact__phone", flat=True))


def received(sandbox, phones):
    return {phone: sandbox.inbox(phone) for phone in phones}


def test_quiet_hours_running_promotion_holds_then_resumes_when_the_window_ends(engine, client):  # noqa: F811
    campaign = running(engine, 5)
    opens = quiet_now(engine.organization)

    assert dispatch_batch(campaign.pk) == "quiet"
    assert dispatch_batch(campaign.pk) == "quiet"  # every chain, every time
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", "attempts")) == {
        (DeliveryStatus.QUEUED, 0)  # nothing was even claimed
    }
    assert all(messages == [] for messages in received(engine.sandbox, phones_of(campaign)).values())
    campaign.refresh_from_db()
    until = timezone.localtime(opens, TOKYO).strftime("%H:%M")
    assert campaign.status == CampaignStatus.RUNNING and until in campaign.status_reason

    # The monitor says so, and until when.
    owner = member(engine.organization, Role.OWNER)
    client.force_login(owner)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("campaigns:monitor_progress", args=[campaign.pk]), HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Held for quiet hours until" in body and until in body

    # The window ends: the next dispatch sends everyone and the hold is lifted.
    not_quiet_now(engine.organization)
    assert dispatch_batch(campaign.pk) == "more"
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) <= SENT_STATES
    for phone in phones_of(campaign):
        engine.sandbox.wait_for(lambda p=phone: engine.sandbox.inbox(p), timeout=10)
    campaign.refresh_from_db()
    assert campaign.status_reason == ""


def test_quiet_hours_running_promotion_resumed_inside_the_window_stays_held(engine):  # noqa: F811
    campaign = running(engine, 3)
    campaign = campaign_pause(campaign, engine.user)
    quiet_now(engine.organization)
    campaign = campaign_resume(campaign, engine.user)
    assert campaign.status == CampaignStatus.RUNNING
    assert dispatch_batch(campaign.pk) == "quiet"
    assert all(messages == [] for messages in received(engine.sandbox, phones_of(campaign)).values())


def test_quiet_hours_running_transactional_campaign_is_exempt(engine):  # noqa: F811
    campaign = running(engine, 4, classification=T)
    quiet_now(engine.organization)
    assert dispatch_batch(campaign.pk) == "more"
    for phone in phones_of(campaign):
        engine.sandbox.wait_for(lambda p=phone: engine.sandbox.inbox(p), timeout=10)
    campaign.refresh_from_db()
    assert campaign.status_reason == ""


def test_quiet_hours_running_sms_fallback_leg_of_a_promotion_waits(engine):  # noqa: F811
    engine.sandbox.configure(profile_mix={"offline_device": 1})  # RCS accepted, never delivered
    campaign = running(engine, 1)
    phone = phones_of(campaign)[0]
    throttle.cache_capabilities(engine.rbm.pk, {phone: True})
    assert dispatch_batch(campaign.pk) == "more"
    delivery = Delivery.objects.get(campaign=campaign)
    assert (delivery.channel, delivery.status) == (Channel.RCS, DeliveryStatus.SENT)
    # What a confirmed revoke does: the SMS leg waits to be sent.
    Delivery.objects.filter(pk=delivery.pk).update(
        channel=Channel.SMS, fallback_reason=FallbackReason.TTL_EXPIRED, pending_fallback=True, lease_until=None
    )
    quiet_now(engine.organization)

    assert dispatch_batch(campaign.pk) == "quiet"
    # Completed meanwhile (a late expiry): the leg still waits.
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.COMPLETED, finished_at=timezone.now())
    assert dispatch_batch(campaign.pk) == "quiet"
    delivery.refresh_from_db()
    assert delivery.pending_fallback and delivery.lease_until is None
    assert [m["channel"] for m in engine.sandbox.inbox(phone)] == []

    not_quiet_now(engine.organization)
    assert dispatch_batch(campaign.pk) == "more"
    engine.sandbox.wait_for(lambda: [m["channel"] for m in engine.sandbox.inbox(phone)] == ["sms"], timeout=10)


def test_quiet_hours_running_single_promotion_waits_and_transactional_goes(engine):  # noqa: F811
    engine.sandbox.configure(profile_mix={"android_plus_message": 1})
    quiet_now(engine.organization)

    def single(phone, classification):
        text = f"【{engine.account.legal_name}】セールのお知らせ。配信停止は「停止」と返信"
        return message_send(organization=engine.organization, official_account=engine.account, phone=phone,
                            content={"text": text}, sms_text=text, classification=classification)

    consent_grant(Contact.objects.create(organization=engine.organization, phone="+819071000001"),
                  method="web_form", source="https://example.jp/form", wording_version="v1")
    promotion = single("+819071000001", P)  # accepted and held until the window opens
    assert promotion.not_before is not None
    transactional = single("+819071000002", T)
    assert send_single(promotion.pk) == "quiet"
    # The transactional message goes, and the waiting promotion does not ride along with it.
    assert send_single(transactional.pk) == "sent"
    engine.sandbox.wait_for(lambda: engine.sandbox.inbox("+819071000002"), timeout=10)
    promotion.refresh_from_db()
    assert (promotion.status, promotion.attempts) == (DeliveryStatus.QUEUED, 0)
    assert engine.sandbox.inbox("+819071000001") == []

    # The window ends: the organization's window no longer covers now, and the hold taken when the
    # message was accepted (its lease until the opening) has run out.
    not_quiet_now(engine.organization)
    Delivery.objects.filter(pk=promotion.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert send_single(promotion.pk) == "sent"
    engine.sandbox.wait_for(lambda: engine.sandbox.inbox("+819071000001"), timeout=10)


def test_quiet_hours_running_real_worker_holds_through_the_window_and_sends_everyone_after(engine, worker):  # noqa: F811
    """A real worker sends a promotion slowly; quiet hours begin while it runs and end 15 s later.
    Nothing claimed inside the window reaches a handset; everyone is sent once after it."""
    engine.sandbox.configure(profile_mix={"android_plus_message": 1})
    GatewayAccount.objects.filter(pk__in=[engine.rbm.pk, engine.cm.pk]).update(rate_per_second=20)
    campaign = running(engine, 160)
    phones = phones_of(campaign)
    worker(DISPATCH_CHAINS=2)
    dispatch_chains_start(campaign.pk)

    def sent_count():
        return Delivery.objects.filter(campaign=campaign, status__in=SENT_STATES).count()

    wait_until(lambda: sent_count() >= 10, timeout=60, interval=0.1)
    start = timezone.now()
    end = start + timedelta(seconds=15)  # long beside a batch, so a loaded machine's lateness fits
    engine.organization.quiet_hours_start = local(start)
    engine.organization.quiet_hours_end = local(end)
    engine.organization.save(update_fields=["quiet_hours_start", "quiet_hours_end"])

    # The held campaign says so while the window lasts.
    wait_until(
        lambda: Campaign.objects.filter(pk=campaign.pk).exclude(status_reason="").exists(), timeout=12, interval=0.1
    )
    assert sent_count() < len(phones), "the campaign finished before the window began: slow it down"
    wait_until(lambda: sent_count() == len(phones), timeout=90, interval=0.2)

    # A batch claimed just before the window begins is about a second of sending (its slots are
    # reserved up to a second ahead); the margin leaves room for a busy machine, nothing later.
    margin = timedelta(seconds=3)
    stamps = []
    for phone in phones:
        messages = engine.sandbox.inbox(phone)
        assert [m["count"] for m in messages] == [1]
        stamps.append(datetime.fromisoformat(messages[0]["first_at"].replace("Z", "+00:00")))
    inside = [s for s in stamps if start + margin <= s < end]
    assert inside == []
    assert any(s >= end for s in stamps), "nothing was left for after the window"
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status_reason == "", timeout=10, interval=0.2)
