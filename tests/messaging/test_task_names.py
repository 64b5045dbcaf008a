"""Celery task names are stored outside the code — in django-celery-beat rows and in messages waiting
in the broker — so they are pinned, and moving or renaming a task function must not change them."""

import json

import pytest
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, PeriodicTask

from campaigns.models import Campaign, CampaignStatus
from config.celery import app
from tests.accounts.factories import OrganizationFactory, UserFactory, approved_account
from tests.campaigns.factories import CampaignFactory, ContactListFactory

# Every task name the project registers. A name missing here is a task someone renamed: rows and
# queued messages written under the old name would no longer find it.
PINNED_TASK_NAMES = {
    "accounts.tasks.send_notification_email",
    "campaigns.import_contacts",
    "campaigns.sweep_import_files",
    "messaging.inbox.fetch_inbound_media",
    "messaging.inbox.send_read_receipts",
    "messaging.tasks.apply_provider_events",
    "messaging.tasks.apply_retention",
    "messaging.tasks.deliver_webhook",
    "messaging.tasks.dispatch_campaign",
    "messaging.tasks.fold_counters",
    "messaging.tasks.heartbeat",
    "messaging.tasks.launch_campaign",
    "messaging.tasks.send_message",
    "messaging.tasks.start_recurring_run",
    "messaging.tasks.start_scheduled_campaign",
    "messaging.tasks.sweep",
    "messaging.tasks.sweep_webhooks",
}


@pytest.fixture(scope="module")
def registry():
    """The task registry as a worker sees it: every app's tasks module imported."""
    app.loader.import_default_modules()
    return app.tasks


def test_every_registered_task_has_its_pinned_name(registry):
    ours = {name for name in registry if not name.startswith("celery.")}
    assert ours == PINNED_TASK_NAMES


def test_every_periodic_task_of_the_settings_resolves(registry):
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in registry
    for route in settings.CELERY_TASK_ROUTES:
        assert route in registry


def _scheduled_campaign(**fields) -> Campaign:
    organization = OrganizationFactory()
    user = UserFactory()
    campaign = CampaignFactory(
        organization=organization, official_account=approved_account(organization), created_by=user,
        status=CampaignStatus.SCHEDULED, approved_by=user, approved_at=timezone.now(), **fields,
    )
    campaign.audience_lists.add(ContactListFactory(organization=organization))
    return campaign


def _fire(registry, row: PeriodicTask) -> None:
    """Run the row's task as beat would have it run: by its stored name, with its stored args."""
    registry[row.task].apply(args=json.loads(row.args), throw=True)


@pytest.mark.django_db
def test_a_campaign_scheduled_before_the_move_still_starts(registry, django_capture_on_commit_callbacks):
    campaign = _scheduled_campaign(scheduled_at=timezone.now())
    # The row exactly as the code before the restructuring wrote it (campaigns.services._schedule_once).
    row = PeriodicTask.objects.create(
        name=f"campaign-{campaign.pk}", task="messaging.tasks.start_scheduled_campaign",
        clocked=ClockedSchedule.objects.create(clocked_time=campaign.scheduled_at),
        one_off=True, enabled=True, args=json.dumps([campaign.pk]),
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _fire(registry, row)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    assert len(callbacks) == 1  # the launch task, enqueued on commit


@pytest.mark.django_db
def test_a_recurring_campaign_scheduled_before_the_move_still_runs(registry, django_capture_on_commit_callbacks):
    parent = _scheduled_campaign(recurrence="0 9 * * *")
    # As campaigns.services._schedule_recurring wrote it before the restructuring.
    crontab = CrontabSchedule.objects.create(
        minute="0", hour="9", day_of_month="*", month_of_year="*", day_of_week="*", timezone="Asia/Tokyo"
    )
    row = PeriodicTask.objects.create(
        name=f"campaign-{parent.pk}", task="messaging.tasks.start_recurring_run", crontab=crontab,
        one_off=False, enabled=True, args=json.dumps([parent.pk]),
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _fire(registry, row)
    run = parent.runs.get()
    assert run.status == CampaignStatus.RUNNING
    assert Campaign.objects.get(pk=parent.pk).status == CampaignStatus.SCHEDULED  # it keeps recurring
    assert len(callbacks) == 1
