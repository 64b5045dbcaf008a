"""Campaign lifecycle services: submit, approve, launch (now, at a time, recurring), pause, resume,
cancel. Views and the API call these; each checks the state machine and records who did what."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import Campaign, CampaignStatus, Classification
from campaigns.status import campaign_transition
from core.quiet_hours import in_quiet_hours, quiet_hours_end
from core.rich_content import validate_rich_content
from core.sms_text import validate_sms_text

S = CampaignStatus


def _beat_task_name(campaign: Campaign) -> str:
    return f"campaign-{campaign.pk}"


def campaign_validate_for_send(campaign: Campaign) -> None:
    """Everything that must hold before a campaign may be approved or launched."""
    errors: dict[str, list] = {}
    try:
        validate_rich_content(campaign.content)
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            errors.setdefault(f"content.{field}" if field != "content" else "content", []).extend(messages)
    account = campaign.official_account
    limit = account.sms_gateway.sms_char_limit if account.sms_gateway else 660
    try:
        validate_sms_text(campaign.sms_text, limit=limit)
    except ValidationError as error:
        errors.update(error.message_dict)
    if not account.can_send:
        errors.setdefault("official_account", []).append(
            _("The official account has not been approved by any carrier yet.")
        )
    if not account.rcs_gateway and not account.sms_gateway:
        errors.setdefault("official_account", []).append(_("The official account has no gateway configured."))
    if not campaign.audience_lists.exists():
        errors.setdefault("audience_lists", []).append(_("Choose at least one audience list."))
    if campaign.classification == Classification.PROMOTION:
        try:
            from campaigns.compliance import display_rule_problems
        except ImportError:  # pragma: no cover - the composer module ships it
            display_rule_problems = None
        if display_rule_problems:
            for problem in display_rule_problems(campaign):
                errors.setdefault("display_rules", []).append(problem)
    if errors:
        raise ValidationError(errors)


def campaign_submit(campaign: Campaign, user) -> Campaign:
    campaign_validate_for_send(campaign)
    campaign = campaign_transition(campaign, S.PENDING_APPROVAL)
    _audit("campaign.submitted", campaign, user)
    return campaign


def campaign_approve(campaign: Campaign, user) -> Campaign:
    campaign_validate_for_send(campaign)
    campaign = campaign_transition(campaign, S.APPROVED, approved_by=user, approved_at=timezone.now())
    _audit("campaign.approved", campaign, user)
    return campaign


def campaign_send_back(campaign: Campaign, user, reason: str = "") -> Campaign:
    campaign = campaign_transition(campaign, S.DRAFT, reason=reason, approved_by=None, approved_at=None)
    _audit("campaign.sent_back", campaign, user, reason=reason)
    return campaign


def campaign_launch(campaign: Campaign, user) -> Campaign:
    """Launch an approved campaign now, at ``scheduled_at``, or on its ``recurrence``."""
    if campaign.status != S.APPROVED:
        raise ValidationError(_("Only an approved campaign can be launched."))
    campaign_validate_for_send(campaign)
    if campaign.recurrence:
        with transaction.atomic():
            _schedule_recurring(campaign)
            campaign = campaign_transition(campaign, S.SCHEDULED)
            _audit("campaign.launched", campaign, user, recurrence=campaign.recurrence)
            return campaign
    if campaign.scheduled_at and campaign.scheduled_at > timezone.now():
        with transaction.atomic():
            _schedule_once(campaign, campaign.scheduled_at)
            campaign = campaign_transition(campaign, S.SCHEDULED)
            _audit("campaign.launched", campaign, user, scheduled_at=campaign.scheduled_at.isoformat())
            return campaign
    campaign = campaign_start(campaign)
    _audit("campaign.launched", campaign, user, status=campaign.status)
    return campaign


def campaign_start(campaign: Campaign) -> Campaign:
    """Start sending now — unless a promotion falls in quiet hours, then wait for the window."""
    if campaign.classification == Classification.PROMOTION and in_quiet_hours(campaign.organization):
        opens = quiet_hours_end(campaign.organization)
        with transaction.atomic():
            _schedule_once(campaign, opens)
            if campaign.status == S.SCHEDULED:
                Campaign.objects.filter(pk=campaign.pk).update(
                    scheduled_at=opens, status_reason=_("Waiting for quiet hours to end.")
                )
                campaign.scheduled_at = opens
                return campaign
            return campaign_transition(
                campaign, S.SCHEDULED, scheduled_at=opens, reason=_("Waiting for quiet hours to end.")
            )
    from messaging.tasks import launch_campaign

    with transaction.atomic():
        campaign = campaign_transition(campaign, S.RUNNING)
        transaction.on_commit(lambda: launch_campaign.delay(campaign.pk))
    return campaign


def campaign_pause(campaign: Campaign, user, reason: str = "") -> Campaign:
    campaign = campaign_transition(campaign, S.PAUSED, reason=reason)
    _audit("campaign.paused", campaign, user, reason=reason)
    return campaign


def campaign_resume(campaign: Campaign, user) -> Campaign:
    from messaging.tasks import start_dispatch

    with transaction.atomic():
        campaign = campaign_transition(campaign, S.RUNNING)
        transaction.on_commit(lambda: start_dispatch(campaign.pk))
        _audit("campaign.resumed", campaign, user)
    return campaign


def campaign_cancel(campaign: Campaign, user) -> Campaign:
    from messaging.engine.fanout import cancel_remaining

    with transaction.atomic():
        campaign = campaign_transition(campaign, S.CANCELLED)
        _unschedule(campaign)
        cancel_remaining(campaign)
        _audit("campaign.cancelled", campaign, user)
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
    return child


# -- django-celery-beat -------------------------------------------------------------------------


def _schedule_once(campaign: Campaign, when) -> None:
    from django_celery_beat.models import ClockedSchedule, PeriodicTask

    clocked = ClockedSchedule.objects.create(clocked_time=when)
    PeriodicTask.objects.update_or_create(
        name=_beat_task_name(campaign),
        defaults={
            "task": "messaging.tasks.start_scheduled_campaign",
            "clocked": clocked,
            "crontab": None,
            "interval": None,
            "one_off": True,
            "enabled": True,
            "args": json.dumps([campaign.pk]),
        },
    )


def _schedule_recurring(campaign: Campaign) -> None:
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    minute, hour, day_of_month, month_of_year, day_of_week = parse_crontab(campaign.recurrence)
    crontab, _created = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone="Asia/Tokyo",
    )
    PeriodicTask.objects.update_or_create(
        name=_beat_task_name(campaign),
        defaults={
            "task": "messaging.tasks.start_recurring_run",
            "crontab": crontab,
            "clocked": None,
            "interval": None,
            "one_off": False,
            "enabled": True,
            "args": json.dumps([campaign.pk]),
        },
    )


def _unschedule(campaign: Campaign) -> None:
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(name=_beat_task_name(campaign)).update(enabled=False)


def parse_crontab(expression: str) -> tuple[str, str, str, str, str]:
    """Split and check a five-field crontab expression."""
    from celery.schedules import crontab

    parts = expression.split()
    if len(parts) != 5:
        raise ValidationError({"recurrence": [_("A crontab has five fields: minute hour day month weekday.")]})
    try:
        minute, hour, day_of_month, month_of_year, day_of_week = parts
        crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week
        )
    except (ValueError, TypeError) as error:
        raise ValidationError({"recurrence": [_("Not a valid crontab: %(error)s") % {"error": error}]}) from None
    return tuple(parts)


def _audit(action: str, campaign: Campaign, user, **details) -> None:
    """Record a lifecycle step in the audit log (audit.services)."""
    from audit.services import audit_record

    actor = user if user is not None and getattr(user, "is_authenticated", False) else None
    audit_record(action, organization=campaign.organization_id, actor=actor,
                 actor_label="" if actor else "system", target=campaign, details=details)
