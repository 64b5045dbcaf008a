"""The fan-out engine end to end on the real parts: PostgreSQL, Redis, Celery worker processes,
the sandbox carrier over HTTP and the console's webhook endpoints on a live server."""

import asyncio
import random
import time
from collections import Counter
from datetime import datetime

import aiohttp
import pytest

from campaigns.models import CampaignStatus
from messaging.counters import counters_fold
from messaging.models import Delivery, DeliveryStatus
from messaging.runs import campaign_start
from messaging.stats import campaign_stats
from messaging.tasks import sweep
from tests.messaging.engine import Engine, engine, receiver, wait_until, worker  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

RCS_PROFILES = {"android_plus_message", "au_iphone_native_rcs", "never_reads"}
SMS_PROFILES = {"iphone_no_app", "rakuten_sms_only", "offline_device"}  # offline: SMS after the TTL


async def _fetch_all(base_url, paths):
    async with aiohttp.ClientSession() as session:
        limiter = asyncio.Semaphore(32)

        async def one(path):
            async with limiter, session.get(f"{base_url}/_sandbox/{path}") as response:
                return await response.json()

        return await asyncio.gather(*(one(p) for p in paths))


def inboxes(sandbox, phones):
    return asyncio.run(_fetch_all(sandbox.url, [f"inbox/{p}" for p in phones]))


def settled(campaign, expected):
    """The audience is frozen and every delivery has reached a state only READ can still change."""
    if Delivery.objects.filter(campaign=campaign).count() != expected:
        return False
    open_rows = Delivery.objects.filter(campaign=campaign).filter(
        status__lt=DeliveryStatus.DELIVERED
    ).exclude(status=DeliveryStatus.FAILED)
    return not open_rows.exists()


def breakdown(campaign):
    from django.db.models import Count

    return list(
        Delivery.objects.filter(campaign=campaign)
        .values("channel", "status", "fallback_reason", "pending_fallback", "error_code")
        .annotate(n=Count("id"))
        .order_by()
    )


def first_arrival(box) -> float:
    return datetime.fromisoformat(box["messages"][0]["first_at"].replace("Z", "+00:00")).timestamp()


def wait_settled(campaign, expected, timeout, sandbox=None):
    try:
        wait_until(lambda: settled(campaign, expected), timeout=timeout, interval=1, on_tick=run_sweeper)
    except AssertionError:
        campaign.refresh_from_db()
        webhooks = sandbox.get("webhooks") if sandbox else {}
        raise AssertionError(f"not settled: {campaign.status} {breakdown(campaign)} webhooks={webhooks}") from None


def run_sweeper():
    sweep.apply()


def wait_completed(campaign, timeout=20):
    """A settled campaign completes at its chain's next look, which an idle chain takes every few
    seconds (messaging.tasks.dispatch_campaign), not at the instant its last receipt lands."""
    def completed():
        campaign.refresh_from_db()
        return campaign.status == CampaignStatus.COMPLETED

    try:
        wait_until(completed, timeout=timeout, interval=0.5)
    except AssertionError:
        raise AssertionError(f"settled but not completed: {campaign.status} {breakdown(campaign)}") from None


def assert_exactly_once(sandbox, campaign, phones):
    summary = sandbox.get("inboxes")
    assert summary["duplicate_count"] == 0, summary["duplicates"]
    assert summary["both_channels_count"] == 0, summary["both_channels"]
    by_phone = {box["phone"]: box for box in inboxes(sandbox, phones)}
    missing, wrong_channel = [], []
    for phone in phones:
        box = by_phone[phone]
        messages = box["messages"]
        if box["profile"] == "data_only_mvno_unreachable":
            assert messages == [], box
            continue
        if len(messages) != 1 or messages[0]["count"] != 1:
            missing.append(box)
            continue
        expected = "rcs" if box["profile"] in RCS_PROFILES else "sms"
        if messages[0]["channel"] != expected:
            wrong_channel.append(box)
    assert not missing, missing[:5]
    assert not wrong_channel, wrong_channel[:5]
    return by_phone


def test_fanout_10k_every_profile_exactly_once_and_counters_match_sandbox(engine, worker):
    worker()
    audience = engine.audience(10_000)
    campaign = engine.campaign(audience, ttl=60)
    phones = list(audience.contacts.values_list("phone", flat=True))
    campaign_start(campaign)
    wait_settled(campaign, 10_000, timeout=240)
    wait_completed(campaign)

    by_phone = assert_exactly_once(engine.sandbox, campaign, phones)
    profiles = Counter(box["profile"] for box in by_phone.values())
    assert set(profiles) == RCS_PROFILES | SMS_PROFILES | {"data_only_mvno_unreachable"}

    # Wait for the READ receipts to land, then compare our counters with the sandbox's own tally.
    def counters_match():
        counters_fold()
        tallies = engine.sandbox.tallies()["carrier"]
        stats = campaign_stats(campaign)
        ours = (stats["by_channel"]["rcs"].get("delivered", 0), stats["by_channel"]["rcs"].get("read", 0),
                stats["by_channel"]["sms"].get("delivered", 0), stats["failed"])
        theirs = (tallies.get("rbm_event_delivered", 0), tallies.get("rbm_event_read", 0),
                  tallies.get("cm_status_2", 0), tallies.get("cm_status_3", 0))
        return ours == theirs and (stats, tallies)

    stats, tallies = wait_until(counters_match, timeout=60, interval=1)
    assert stats["targeted"] == 10_000
    assert stats["sent"] == 10_000
    assert stats["fallback_by_reason"]["not_capable"] == (
        profiles["iphone_no_app"] + profiles["rakuten_sms_only"] + profiles["data_only_mvno_unreachable"]
    )
    assert stats["fallback_by_reason"]["ttl_expired"] == profiles["offline_device"]
    assert stats["failed"] == profiles["data_only_mvno_unreachable"]
    assert stats["read"] == profiles["android_plus_message"] + profiles["au_iphone_native_rcs"]


NO_TTL_MIX = {"android_plus_message": 60, "iphone_no_app": 20, "rakuten_sms_only": 10, "never_reads": 10}


def all_reached_once(sandbox, phones):
    summary = sandbox.get("inboxes")
    assert summary["duplicate_count"] == 0, summary["duplicates"]
    assert summary["both_channels_count"] == 0, summary["both_channels"]
    boxes = inboxes(sandbox, phones)
    missing = [box for box in boxes if len(box["messages"]) != 1 or box["messages"][0]["count"] != 1]
    assert not missing, f"{len(missing)} handsets without exactly one message, e.g. {missing[:3]}"
    assert sandbox.tallies()["carrier"].get("handset_duplicates", 0) == 0


def start_20k_campaign(engine, worker):
    """A 20,000-recipient campaign at 1,500/s per gateway on one worker: (campaign, phones, worker)."""
    engine.sandbox.configure(profile_mix=NO_TTL_MIX)
    engine.rbm.rate_per_second = engine.cm.rate_per_second = 1500
    engine.rbm.save()
    engine.cm.save()
    audience = engine.audience(20_000)
    campaign = engine.campaign(audience)
    phones = list(audience.contacts.values_list("phone", flat=True))
    current = worker()
    campaign_start(campaign)
    return campaign, phones, current


def settled_once_each(engine, campaign, phones):
    """The interruptions landed while it was still sending; then everyone got exactly one message."""
    sent_before_end = engine.sandbox.tallies()["carrier"]
    assert sent_before_end.get("rbm_accepted", 0) + sent_before_end.get("cm_accepted", 0) < 20_000, (
        "the interruptions must land while the campaign is still sending"
    )
    wait_settled(campaign, 20_000, timeout=300, sandbox=engine.sandbox)
    all_reached_once(engine.sandbox, phones)
    assert Delivery.objects.filter(campaign=campaign, status__gte=DeliveryStatus.SENT).count() == 20_000


def test_fanout_sigkill_worker_five_times_no_duplicate_no_gap(engine, worker):
    campaign, phones, current = start_20k_campaign(engine, worker)
    rng = random.Random(20_000)
    kills = 0
    deadline = time.monotonic() + 120
    while kills < 5 and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.5, 2.5))
        current.kill()
        kills += 1
        run_sweeper()
        current = worker(name=f"w{kills + 1}")
    assert kills == 5
    settled_once_each(engine, campaign, phones)


def test_fanout_sigterm_worker_five_times_graceful_stop_no_duplicate_no_gap(engine, worker):
    """A worker stopped with SIGTERM (a deploy, a scale-in) finishes the batch in hand within the
    lease and hands back the rest: nobody gets a message twice, nobody is missed."""
    campaign, phones, current = start_20k_campaign(engine, worker)
    rng = random.Random(15)
    lease = int(current.env["DELIVERY_LEASE_SECONDS"])
    stops = []
    deadline = time.monotonic() + 120
    while len(stops) < 5 and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.5, 2.5))
        stops.append(current.terminate(timeout=lease))
        current = worker(name=f"t{len(stops) + 1}")
    assert len(stops) == 5
    assert max(stops) < lease, f"a stop took longer than the lease: {stops}"
    settled_once_each(engine, campaign, phones)


def test_fanout_429_and_5xx_storm_slows_down_and_finishes(engine, worker):
    engine.sandbox.configure(
        profile_mix=NO_TTL_MIX,
        rate_limit={"rate": 300, "burst": 150},  # a CM request of 100 messages takes 100 tokens
        faults={"error_rate": 0.15, "error_status": 503},
    )
    audience = engine.audience(3_000)
    campaign = engine.campaign(audience)
    phones = list(audience.contacts.values_list("phone", flat=True))
    worker(AUTO_PAUSE_ERROR_RATE=0)
    campaign_start(campaign)
    wait_settled(campaign, 3_000, timeout=240)
    tallies = engine.sandbox.tallies()["carrier"]
    assert tallies.get("throttled", 0) > 0, tallies
    assert tallies.get("injected_errors", 0) > 0, tallies
    all_reached_once(engine.sandbox, phones)
    wait_completed(campaign)


def test_fanout_two_workers_share_one_rate_limit(sandbox, live_server, worker):
    # Receipts go to the test process's live server here, as before the engine tests moved to the
    # production receiver: with the receiver as a third busy process on two cores, senders wake late
    # and the arrivals overshoot a one-second window by 2-16 % (a pacing defect left for issue 20).
    engine = Engine(sandbox, live_server)
    engine.sandbox.configure(
        profile_mix={"android_plus_message": 1},
        latencies_ms={"delivered": [0, 0], "read": [50, 50], "sms_delivered": [0, 0]},
    )
    engine.rbm.rate_per_second = 200
    engine.rbm.save()
    audience = engine.audience(1_600)
    campaign = engine.campaign(audience)
    phones = list(audience.contacts.values_list("phone", flat=True))
    worker(name="a", DISPATCH_CHAINS=4)
    worker(name="b", DISPATCH_CHAINS=4)
    campaign_start(campaign)
    wait_settled(campaign, 1_600, timeout=120)
    arrivals = sorted(first_arrival(box) for box in inboxes(engine.sandbox, phones))
    assert len(arrivals) == 1_600
    # Any one-second window: the 201st send after a send must come at least a second later.
    busiest = max(
        sum(1 for t in arrivals[i : i + 260] if t < start + 1.0) for i, start in enumerate(arrivals)
    )
    assert busiest <= 200, busiest
    assert arrivals[-1] - arrivals[0] >= (1_600 / 200) - 1.5  # and it did not crawl either


def test_fanout_optout_mid_promotion_stops_further_sends(engine, worker):
    engine.sandbox.configure(profile_mix={"android_plus_message": 1})
    engine.rbm.rate_per_second = 200
    engine.rbm.save()
    audience = engine.audience(1_000)
    campaign = engine.campaign(audience, classification="promotion")
    worker()
    campaign_start(campaign)
    wait_until(lambda: engine.sandbox.tallies()["carrier"].get("rbm_accepted", 0) >= 100, timeout=30, interval=0.1)
    from django.utils import timezone

    from campaigns.models import Contact

    late = list(Contact.objects.filter(organization=engine.organization).order_by("-id")[:300])
    Contact.objects.filter(id__in=[c.id for c in late]).update(opted_out_at=timezone.now(), opt_out_method="keyword")
    wait_settled(campaign, 1_000, timeout=120)
    for box in inboxes(engine.sandbox, [c.phone for c in late]):
        assert box["messages"] == [], box
    cancelled = Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.CANCELLED, error_code="opted_out")
    assert cancelled.count() == 300
    counters_fold()
    assert campaign_stats(campaign)["cancelled"] == 300


def test_fanout_pause_resume_and_cancel(engine, worker):
    from messaging.runs import campaign_cancel, campaign_pause, campaign_resume

    engine.sandbox.configure(profile_mix={"android_plus_message": 1})
    engine.rbm.rate_per_second = 300
    engine.rbm.save()
    first = engine.audience(1_500, name="a")
    second = engine.audience(1_500, first=5_000, name="b")
    paused = engine.campaign(first)
    cancelled = engine.campaign(second)
    worker()
    campaign_start(paused)
    accepted = lambda: engine.sandbox.tallies()["carrier"].get("rbm_accepted", 0)  # noqa: E731
    wait_until(lambda: accepted() >= 200, timeout=30, interval=0.1)
    campaign_pause(paused, engine.user)
    time.sleep(3)  # the batch in flight finishes
    frozen_at = accepted()
    time.sleep(3)
    assert accepted() == frozen_at < 1_500
    paused.refresh_from_db()
    campaign_resume(paused, engine.user)
    wait_settled(paused, 1_500, timeout=60)
    all_reached_once(engine.sandbox, list(first.contacts.values_list("phone", flat=True)))

    campaign_start(cancelled)
    wait_until(lambda: accepted() >= 1_500 + 200, timeout=30, interval=0.1)
    cancelled.refresh_from_db()
    campaign_cancel(cancelled, engine.user)
    time.sleep(3)  # the batch in flight finishes and records what it sent
    total = accepted()
    time.sleep(2)
    assert accepted() == total < 3_000
    sent = Delivery.objects.filter(campaign=cancelled, status__gte=DeliveryStatus.SENT, status__lt=DeliveryStatus.FAILED)
    left = Delivery.objects.filter(campaign=cancelled, status=DeliveryStatus.CANCELLED)
    assert sent.count() == total - 1_500  # what the carrier took is recorded as sent, not cancelled
    assert left.count() == 3_000 - total
    cancelled.refresh_from_db()
    assert cancelled.status == CampaignStatus.CANCELLED


def test_single_messages_go_out_beside_a_running_campaign_within_the_account_rate(engine, worker):
    """The priority lane takes its share of the account's rate instead of, for each message, the slot
    after those the campaign has reserved ahead (here one chain reserving a second of sending)."""
    from core import throttle
    from messaging.services import message_send

    rate = 40
    engine.sandbox.configure(
        profile_mix={"android_plus_message": 1},
        latencies_ms={"delivered": [0, 0], "read": [50, 50], "sms_delivered": [0, 0]},
        rate_limit={"rate": rate, "burst": 5},  # the carrier's limit: the lanes together running over get 429s
    )
    engine.rbm.rate_per_second = rate
    engine.rbm.save()
    audience = engine.audience(1_000)
    campaign = engine.campaign(audience)
    alerts = [f"+8190{40000000 + i:08d}" for i in range(20)]
    # Known capabilities: every request the carrier counts is a send.
    phones = alerts + list(audience.contacts.values_list("phone", flat=True))
    throttle.cache_capabilities(engine.rbm.pk, dict.fromkeys(phones, True))
    worker(name="bulk", queues="celery", DISPATCH_CHAINS=1)
    worker(name="priority", queues="priority")
    campaign_start(campaign)
    accepted = lambda: engine.sandbox.tallies()["carrier"].get("rbm_accepted", 0)  # noqa: E731
    wait_until(lambda: accepted() >= 100, timeout=30, interval=0.1)
    enqueued_at = time.time()
    for phone in alerts:
        message_send(organization=engine.organization, official_account=engine.account, phone=phone,
                     content={"text": "カードの不正利用の疑いがあります。"}, sms_text="カードの不正利用の疑いがあります。")
    wait_until(lambda: all(box["messages"] for box in inboxes(engine.sandbox, alerts)), timeout=60, interval=0.5)
    arrived = [first_arrival(box) - enqueued_at for box in inboxes(engine.sandbox, alerts)]
    # 20 alerts at 20 % of 40/s: 2.5 s, after at most a second of the campaign's reserved slots. Each
    # taking the slot after the campaign's, two priority processes sent two a second (10 s in all).
    assert max(arrived) < 6, sorted(arrived)
    assert accepted() < 1_000 + len(alerts), "the alerts waited for the campaign to finish"

    wait_settled(campaign, 1_000, timeout=120)
    assert engine.sandbox.tallies()["carrier"].get("throttled", 0) == 0
