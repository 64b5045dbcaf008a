"""Gateway failover on the real parts: with the primary CM gateway answering 503 to everything, a
campaign's SMS legs go through the official account's backup gateway, each handset reached once and
the switch audited; once the primary answers again, new sends go through it. A leg the primary may
have accepted (pinned to it) never goes through the backup. A 429 from CM shrinks the next batch.

The campaigns run in a real worker process; the pinning tests dispatch in-process. All go to the
sandbox carrier over HTTP, where two CM accounts are registered (``Engine.cm`` and ``cm_backup``).
"""

import time

import pytest

from audit.models import AuditEvent
from campaigns.models import CampaignStatus
from core import gateway_health
from messaging.engine.dispatch import send_single
from messaging.models import Channel, Delivery, DeliveryStatus
from messaging.runs import campaign_start
from messaging.services import message_send
from tests.messaging.engine import engine, receiver, wait_until, worker  # noqa: F401
from tests.messaging.test_fanout import all_reached_once, inboxes, wait_completed, wait_settled

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

SMS_ONLY = {"rakuten_sms_only": 1}


def with_backup(engine):  # noqa: F811
    engine.account.backup_sms_gateway = engine.cm_backup
    engine.account.save(update_fields=["backup_sms_gateway"])


def primary_down(engine):  # noqa: F811
    engine.sandbox.configure(faults={"down_tokens": [engine.cm.credentials["product_token"]], "error_status": 503})


def gateways_reached(sandbox, phones) -> set:
    return {message["gateway_id"] for box in inboxes(sandbox, phones) for message in box["messages"]}


def test_campaign_goes_through_the_backup_while_the_primary_answers_503_and_back_after(engine, worker):  # noqa: F811
    engine.sandbox.configure(profile_mix=SMS_ONLY)
    primary_down(engine)
    with_backup(engine)
    worker(GATEWAY_FAILOVER_ERRORS=3, GATEWAY_FAILOVER_COOLOFF_SECONDS=1)
    audience = engine.audience(300)
    campaign = engine.campaign(audience)
    phones = list(audience.contacts.values_list("phone", flat=True))

    campaign_start(campaign)
    wait_settled(campaign, 300, timeout=120, sandbox=engine.sandbox)
    all_reached_once(engine.sandbox, phones)
    assert gateways_reached(engine.sandbox, phones) == {engine.cm_backup.pk}
    assert set(Delivery.objects.filter(campaign=campaign).values_list("sms_gateway_id", flat=True)) == {
        engine.cm_backup.pk
    }
    wait_completed(campaign)  # the 503 storm did not auto-pause it: the backup took over
    downs = AuditEvent.objects.filter(action="gateway.down", target_id=str(engine.cm.pk))
    assert downs.count() == 1
    assert downs.get().organization_id == engine.organization.pk and downs.get().actor_label == "system"
    assert gateway_health.down_since(engine.cm.pk) is not None

    engine.sandbox.configure(faults={"down_tokens": []})  # the primary answers again
    time.sleep(1.5)  # past the cool-off: the next batch probes it with a few of its legs
    probing = engine.audience(40, first=1_000, name="probing")
    second = engine.campaign(probing)
    probing_phones = list(probing.contacts.values_list("phone", flat=True))
    campaign_start(second)
    wait_settled(second, 40, timeout=60, sandbox=engine.sandbox)
    all_reached_once(engine.sandbox, probing_phones)
    assert engine.cm.pk in gateways_reached(engine.sandbox, probing_phones)
    assert AuditEvent.objects.filter(action="gateway.recovered", target_id=str(engine.cm.pk)).count() == 1
    assert gateway_health.down_since(engine.cm.pk) is None

    later = engine.audience(40, first=2_000, name="later")
    third = engine.campaign(later)
    later_phones = list(later.contacts.values_list("phone", flat=True))
    campaign_start(third)
    wait_settled(third, 40, timeout=60, sandbox=engine.sandbox)
    all_reached_once(engine.sandbox, later_phones)
    assert gateways_reached(engine.sandbox, later_phones) == {engine.cm.pk}


def send(engine, phone):  # noqa: F811
    text = "ご予約を承りました。【株式会社テスト】"
    return message_send(organization=engine.organization, official_account=engine.account, phone=phone,
                        content={"text": text}, sms_text=text)


def take_primary_down(engine, settings):  # noqa: F811
    settings.GATEWAY_FAILOVER_ERRORS = 1
    settings.GATEWAY_FAILOVER_COOLOFF_SECONDS = 600
    gateway_health.reset(engine.cm.pk)
    assert gateway_health.record_failure(engine.cm.pk) == gateway_health.DOWN


def test_a_leg_the_primary_may_have_accepted_never_goes_through_the_backup(engine, settings):  # noqa: F811
    """A first attempt that timed out at the primary left the row pinned to it: while the primary is
    down the retry goes to the primary again (and waits), never to the backup."""
    engine.sandbox.configure(profile_mix=SMS_ONLY)
    primary_down(engine)
    with_backup(engine)
    take_primary_down(engine, settings)
    phone = "+819061000001"
    delivery = send(engine, phone)
    Delivery.objects.filter(pk=delivery.pk).update(channel=Channel.SMS, sms_gateway=engine.cm, attempts=1)

    assert send_single(delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED
    assert engine.sandbox.inbox(phone) == []
    # The primary's 503 refused it for sure: now, and only now, it may switch.
    assert delivery.sms_gateway_id is None


def test_a_fresh_leg_goes_through_the_backup_while_the_primary_is_down(engine, settings):  # noqa: F811
    engine.sandbox.configure(profile_mix=SMS_ONLY)
    primary_down(engine)
    with_backup(engine)
    take_primary_down(engine, settings)
    phone = "+819061000002"
    delivery = send(engine, phone)

    assert send_single(delivery.pk) == "sent"
    delivery.refresh_from_db()
    assert delivery.sms_gateway_id == engine.cm_backup.pk
    engine.sandbox.wait_for(lambda: engine.sandbox.inbox(phone), timeout=5)
    assert [(m["gateway_id"], m["count"]) for m in engine.sandbox.inbox(phone)] == [(engine.cm_backup.pk, 1)]
    assert engine.sandbox.tallies()["carrier"].get("injected_errors", 0) == 0  # the primary was not tried


def test_without_a_backup_a_down_primary_is_still_tried(engine, settings):  # noqa: F811
    engine.sandbox.configure(profile_mix=SMS_ONLY)
    take_primary_down(engine, settings)
    phone = "+819061000003"
    delivery = send(engine, phone)

    assert send_single(delivery.pk) == "sent"
    delivery.refresh_from_db()
    assert delivery.sms_gateway_id == engine.cm.pk
    assert AuditEvent.objects.filter(action="gateway.recovered", target_id=str(engine.cm.pk)).count() == 1


def test_a_429_from_cm_shrinks_the_next_batch(engine, worker):  # noqa: F811
    """The carrier takes at most 60 messages at once (a request of 100 always answers 429): sending
    the same 100 again would never get through; halving the batch does."""
    engine.sandbox.configure(profile_mix=SMS_ONLY, rate_limit={"rate": 1000, "burst": 60})
    worker()
    audience = engine.audience(200)
    campaign = engine.campaign(audience)
    phones = list(audience.contacts.values_list("phone", flat=True))

    campaign_start(campaign)
    wait_settled(campaign, 200, timeout=90, sandbox=engine.sandbox)
    all_reached_once(engine.sandbox, phones)
    tallies = engine.sandbox.tallies()["carrier"]
    assert tallies.get("cm_batch_refused_429:100", 0) >= 1, tallies
    assert tallies["cm_batch:100"] == tallies["cm_batch_refused_429:100"], tallies  # never accepted at 100
    halved = {int(key.split(":")[1]) for key in tallies if key.startswith("cm_batch:")} - {100}
    assert halved & {50, 25, 12, 6, 3, 1}, tallies  # the next requests, halved (twice when two were refused)
    campaign.refresh_from_db()
    assert campaign.status in (CampaignStatus.RUNNING, CampaignStatus.COMPLETED)
