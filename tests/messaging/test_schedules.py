"""Schedules fired by a real celery beat process: a campaign at a given time, a recurring one, and
promotions waiting for quiet hours to end."""

import json
from datetime import time as dtime
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, PeriodicTask

from campaigns.models import Campaign, CampaignStatus, Classification
from messaging.runs import campaign_launch, campaign_start
from tests.messaging.engine import beat, engine, receiver, wait_until, worker  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


def test_scheduled_campaign_is_fired_by_beat(engine, worker, beat):
    engine.sandbox.configure(profile_mix={"android_plus_message": 1})
    audience = engine.audience(50)
    campaign = engine.campaign(audience, scheduled_at=timezone.now() + timedelta(seconds=4))
    worker()
    campaign_launch(campaign, engine.user)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED
    assert engine.sandbox.tallies()["carrier"].get("rbm_accepted", 0) == 0
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.COMPLETED, timeout=60)
    assert engine.sandbox.tallies()["carrier"]["rbm_accepted"] == 50


def test_a_beat_row_written_before_the_restructuring_still_fires(engine, worker, beat):
    """The row as the code before the restructuring wrote it, by hand: the pinned task name keeps
    such rows working after the task's code moved."""
    engine.sandbox.configure(profile_mix={"android_plus_message": 1})
    audience = engine.audience(10)
    campaign = engine.campaign(audience, scheduled_at=timezone.now() + timedelta(seconds=2))
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.SCHEDULED)
    PeriodicTask.objects.create(
        name=f"campaign-{campaign.pk}", task="messaging.tasks.start_scheduled_campaign",
        clocked=ClockedSchedule.objects.create(clocked_time=campaign.scheduled_at),
        one_off=True, enabled=True, args=json.dumps([campaign.pk]),
    )
    worker()
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.COMPLETED, timeout=60)
    assert engine.sandbox.tallies()["carrier"]["rbm_accepted"] == 10


def test_recurring_campaign_runs_each_occurrence_as_a_child_with_its_own_stats(engine, worker, beat):
    engine.sandbox.configure(profile_mix={"android_plus_message": 1})
    audience = engine.audience(20)
    parent = engine.campaign(audience, recurrence="* * * * *")
    worker()
    campaign_launch(parent, engine.user)
    parent.refresh_from_db()
    assert parent.status == CampaignStatus.SCHEDULED
    run = wait_until(lambda: parent.runs.filter(status=CampaignStatus.COMPLETED).first(), timeout=90)
    assert run.deliveries.count() == 20
    assert run.name.startswith(parent.name)
    assert Campaign.objects.get(pk=parent.pk).status == CampaignStatus.SCHEDULED  # it keeps recurring
    from messaging.stats import campaign_stats

    assert campaign_stats(run)["targeted"] == 20
    assert campaign_stats(parent)["targeted"] == 0


def test_quiet_hours_promotion_waits_for_the_window_and_transaction_goes_now(engine):
    now = timezone.localtime()
    engine.organization.quiet_hours_start = (now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    engine.organization.quiet_hours_end = (now + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    engine.organization.save()
    audience = engine.audience(5)
    promotion = engine.campaign(audience, classification=Classification.PROMOTION)
    campaign_start(promotion)
    promotion.refresh_from_db()
    assert promotion.status == CampaignStatus.SCHEDULED
    opens = timezone.localtime(promotion.scheduled_at)
    assert opens.time() == engine.organization.quiet_hours_end
    assert timedelta(hours=1) < opens - now <= timedelta(hours=2)
    assert PeriodicTask.objects.get(name=f"campaign-{promotion.pk}").clocked.clocked_time == promotion.scheduled_at

    transactional = engine.campaign(audience, classification=Classification.TRANSACTION)
    campaign_start(transactional)
    transactional.refresh_from_db()
    assert transactional.status == CampaignStatus.RUNNING


def test_quiet_hours_window_wraps_midnight():
    from accounts.models import Organization
    from core.quiet_hours import in_quiet_hours, quiet_hours_end

    org = Organization(quiet_hours_start=dtime(21, 0), quiet_hours_end=dtime(9, 0))
    tokyo = timezone.get_default_timezone()
    late = timezone.make_aware(timezone.datetime(2026, 11, 26, 23, 30), tokyo)
    morning = timezone.make_aware(timezone.datetime(2026, 11, 27, 8, 59), tokyo)
    day = timezone.make_aware(timezone.datetime(2026, 11, 27, 9, 0), tokyo)
    assert in_quiet_hours(org, late) and in_quiet_hours(org, morning) and not in_quiet_hours(org, day)
    assert quiet_hours_end(org, late) == timezone.make_aware(timezone.datetime(2026, 11, 27, 9, 0), tokyo)
    assert quiet_hours_end(org, day) == day
