"""Run control of a campaign: launch (now, at a time, on a crontab), start, pause, resume, cancel,
the child run of each recurring occurrence, and the django-celery-beat rows that schedule them.

Approving a campaign is the campaign app's (``campaigns.services``); running it is the engine's, so
this lives in messaging, which may import campaigns and never the other way round. Each step checks
the state machine (``campaigns.status``), records who did what in the audit log, and enqueues its
work on commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from celery.schedules import crontab as celery_crontab
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, PeriodicTask

from campaigns.compliance import quiet_hours_held_reason, quiet_hours_hold
from campaigns.models import Campaign, CampaignStatus
from campaigns.recurrence import BEAT_TIMEZONE
from campaigns.services import campaign_audit_record, campaign_validate_for_send
from campaigns.status import campaign_transition
from messaging import tasks
from messaging.engine.dispatch import dispatch_chains_start
from messaging.engine.sweep import cancel_remaining

S = CampaignStatus


@dataclass(frozen=True)
class LaunchTiming:
    """When a launch of the campaign really starts sending — what the launch confirmation says.

    ``starts_at`` None: at once (or, ``recurring``, on each occurrence). ``held_by_quiet_hours``: the
    launch (now, or at the chosen time) falls in the organization's quiet hours, so sending starts
    at ``starts_at``, when they end; ``requested_at`` is the chosen time of a scheduled launch."""

    starts_at: datetime | None = None
    held_by_quiet_hours: bool = False
    recurring: bool = False
    requested_at: datetime | None = None


def campaign_launch_timing(campaign: Campaign, now: datetime | None = None) -> LaunchTiming:
    """When launching ``campaign`` now would start sending: the same decisions as
    ``campaign_launch`` and ``campaign_start`` — a future ``scheduled_at`` waits for its time, and
    the held-until time comes from ``quiet_hours_hold``, the one quiet-hours decision the engine
    asks at every claim."""
    if campaign.recurrence:
        return LaunchTiming(recurring=True)
    now = now or timezone.now()
    requested = campaign.scheduled_at if campaign.scheduled_at and campaign.scheduled_at > now else None
    moment = requested or now
    opens = quiet_hours_hold(campaign.organization, campaign.classification, now=moment)
    if opens is not None:
        return LaunchTiming(starts_at=opens, held_by_quiet_hours=True, requested_at=requested)
    return LaunchTiming(starts_at=requested, requested_at=requested)


def campaign_launch(campaign: Campaign, user, *, api_key=None) -> Campaign:
    """Launch an approved campaign now, at ``scheduled_at``, or on its ``recurrence``. ``api_key``:
    the key an API call launched with (``user`` is its creator), kept in the audit log."""
    if campaign.status != S.APPROVED:
        raise ValidationError(_("Only an approved campaign can be launched."))
    campaign_validate_for_send(campaign)
    if campaign.recurrence:
        with transaction.atomic():
            _schedule_recurring(campaign)
            campaign = campaign_transition(campaign, S.SCHEDULED)
            campaign_audit_record("campaign.launched", campaign, user, api_key=api_key, recurrence=campaign.recurrence)
            return campaign
    if campaign.scheduled_at and campaign.scheduled_at > timezone.now():
        with transaction.atomic():
            _schedule_once(campaign, campaign.scheduled_at)
            campaign = campaign_transition(campaign, S.SCHEDULED)
            campaign_audit_record("campaign.launched", campaign, user, api_key=api_key,
                                  scheduled_at=campaign.scheduled_at.isoformat())
            return campaign
    campaign = campaign_start(campaign)
    campaign_audit_record("campaign.launched", campaign, user, api_key=api_key, status=campaign.status)
    return campaign


def campaign_start(campaign: Campaign) -> Campaign:
    """Start sending now — unless a promotion falls in quiet hours, then wait for the window. (A run
    that is already going, or resumed, inside the window is held by the engine at claim time.)"""
    opens = quiet_hours_hold(campaign.organization, campaign.classification)
    if opens is not None:
        with transaction.atomic():
            _schedule_once(campaign, opens)
            if campaign.status == S.SCHEDULED:
                reason = quiet_hours_held_reason(opens)
                Campaign.objects.filter(pk=campaign.pk).update(scheduled_at=opens, status_reason=reason)
                campaign.scheduled_at, campaign.status_reason = opens, reason
                return campaign
            return campaign_transition(campaign, S.SCHEDULED, scheduled_at=opens, reason=quiet_hours_held_reason(opens))
    with transaction.atomic():
        campaign = campaign_transition(campaign, S.RUNNING)
        transaction.on_commit(lambda: tasks.launch_campaign.delay(campaign.pk))
    return campaign


def campaign_pause(campaign: Campaign, user, reason: str = "") -> Campaign:
    campaign = campaign_transition(campaign, S.PAUSED, reason=reason)
    campaign_audit_record("campaign.paused", campaign, user, reason=reason)
    return campaign


def campaign_resume(campaign: Campaign, user) -> Campaign:
    with transaction.atomic():
        campaign = campaign_transition(campaign, S.RUNNING)
        transaction.on_commit(lambda: dispatch_chains_start(campaign.pk))
        campaign_audit_record("campaign.resumed", campaign, user)
    return campaign


def campaign_cancel(campaign: Campaign, user) -> Campaign:
    with transaction.atomic():
        campaign = campaign_transition(campaign, S.CANCELLED)
        _unschedule(campaign)
        cancel_remaining(campaign)
        campaign_audit_record("campaign.cancelled", campaign, user)
    return campaign


def campaign_new_run(parent: Campaign) -> Campaign:
    """One occurrence of a recurring campaign: a child run with its own deliveries and stats."""
    child = Campaign.objects.create(
        organization=parent.organization,
        official_account=parent.official_account,
        name=f"{parent.name} — {timezone.localtime():%Y-%m-%d %H:%M}",
        classification=parent.classification,
        content=parent.content,
        sms_text=parent.sms_text,
        ttl_seconds=parent.ttl_seconds,
        status=S.APPROVED,
        created_by=parent.created_by,
        approved_by=parent.approved_by,
        approved_at=parent.approved_at,
        parent=parent,
    )
    child.audience_lists.set(parent.audience_lists.all())
    child.exclusion_lists.set(parent.exclusion_lists.all())
    child.audience_segments.set(parent.audience_segments.all())
    child.exclusion_segments.set(parent.exclusion_segments.all())
    return child


# -- django-celery-beat -------------------------------------------------------------------------
# The rows name their task by its pinned name (messaging/tasks.py): rows written before a move of
# the code still find it.


def _beat_task_name(campaign: Campaign) -> str:
    return f"campaign-{campaign.pk}"


def _schedule_once(campaign: Campaign, when) -> None:
    clocked = ClockedSchedule.objects.create(clocked_time=when)
    PeriodicTask.objects.update_or_create(
        name=_beat_task_name(campaign),
        defaults={
            "task": tasks.start_scheduled_campaign.name,
            "clocked": clocked,
            "crontab": None,
            "interval": None,
            "one_off": True,
            "enabled": True,
            "args": json.dumps([campaign.pk]),
        },
    )


def _schedule_recurring(campaign: Campaign) -> None:
    minute, hour, day_of_month, month_of_year, day_of_week = parse_crontab(campaign.recurrence)
    crontab, _created = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=BEAT_TIMEZONE,  # the clock campaigns.recurrence projects the calendar's runs on
    )
    PeriodicTask.objects.update_or_create(
        name=_beat_task_name(campaign),
        defaults={
            "task": tasks.start_recurring_run.name,
            "crontab": crontab,
            "clocked": None,
            "interval": None,
            "one_off": False,
            "enabled": True,
            "args": json.dumps([campaign.pk]),
        },
    )


def _unschedule(campaign: Campaign) -> None:
    PeriodicTask.objects.filter(name=_beat_task_name(campaign)).update(enabled=False)


def parse_crontab(expression: str) -> tuple[str, str, str, str, str]:
    """Split and check a five-field crontab expression."""
    parts = expression.split()
    if len(parts) != 5:
        raise ValidationError({"recurrence": [_("A crontab has five fields: minute hour day month weekday.")]})
    try:
        minute, hour, day_of_month, month_of_year, day_of_week = parts
        celery_crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
        )
    except (ValueError, TypeError) as error:
        raise ValidationError({"recurrence": [_("Not a valid crontab: %(error)s") % {"error": error}]}) from None
    return tuple(parts)
