"""The fan-out engine end to end on the real parts: PostgreSQL, Redis, Celery worker processes,
the sandbox carrier over HTTP and the console's webhook endpoints on a live server."""

import asyncio
import random
import time
from collections import Counter

import aiohttp
import pytest

from campaigns.models import CampaignStatus
from campaigns.services import campaign_start
from campaigns.stats import campaign_stats
from messaging.counters import counters_fold
from messaging.models import Delivery, DeliveryStatus
from messaging.tasks import sweep
from tests.messaging.engine import engine, wait_until, worker  # noqa: F401

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


def wait_settled(campaign, expected, timeout):
    try:
        wait_until(lambda: settled(campaign, expected), timeout=timeout, interval=1, on_tick=run_sweeper)
    except AssertionError:
        campaign.refresh_from_db()
        raise AssertionError(f"not settled: {campaign.status} {breakdown(campaign)}") from None


def run_sweeper():
    sweep.apply()


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
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED

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
