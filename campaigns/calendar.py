"""The campaign calendar's reading: which of an organization's campaigns send when in a span of time —
one-off campaigns at their scheduled time, recurring ones at each upcoming run their crontab gives
(computed, not stored: campaigns.recurrence), and campaigns and recurring runs that were sent, at
the time they started."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus, Classification
from campaigns.recurrence import recurrence_runs
from core.quiet_hours import in_quiet_hours

# Campaigns not sent yet that carry a time: shown at it with their status (only a scheduled one is
# sure to go; the others still need approval or a launch).
PLANNED_STATES = [
    CampaignStatus.DRAFT,
    CampaignStatus.PENDING_APPROVAL,
    CampaignStatus.APPROVED,
    CampaignStatus.SCHEDULED,
]
RUNS_PER_CAMPAIGN = 2000  # an every-hour crontab over a six-week month grid stays under it


class EntryKind:
    SCHEDULED = "scheduled"
    RECURRING = "recurring"  # an upcoming run computed from the recurrence
    SENT = "sent"


@dataclass(frozen=True)
class CalendarEntry:
    campaign: Campaign
    at: datetime  # Japan time
    kind: str
    quiet: bool  # a promotion due in quiet hours: it waits until the window opens


def calendar_entries(organization, start: datetime, end: datetime, *, now: datetime | None = None) -> list[CalendarEntry]:
    """The organization's campaigns in [start, end), in time order. Upcoming recurring runs start from
    ``now`` (runs before it either happened — they are sent runs — or did not)."""
    now = now or timezone.now()
    campaigns = Campaign.objects.filter(organization=organization).only(
        "id", "name", "status", "classification", "recurrence", "scheduled_at", "started_at", "parent_id",
        "organization_id",
    )
    entries: list[CalendarEntry] = []

    def add(campaign: Campaign, at: datetime, kind: str) -> None:
        local = timezone.localtime(at)
        quiet = (kind != EntryKind.SENT and campaign.classification == Classification.PROMOTION
                 and in_quiet_hours(organization, local))
        entries.append(CalendarEntry(campaign, local, kind, quiet))

    for campaign in campaigns.filter(started_at__gte=start, started_at__lt=end):
        add(campaign, campaign.started_at, EntryKind.SENT)
    for campaign in campaigns.filter(status__in=PLANNED_STATES, recurrence="", started_at__isnull=True,
                                     scheduled_at__gte=start, scheduled_at__lt=end):
        add(campaign, campaign.scheduled_at, EntryKind.SCHEDULED)
    upcoming_from = max(start, now)
    if upcoming_from < end:
        for campaign in campaigns.filter(status__in=PLANNED_STATES).exclude(recurrence=""):
            for at in recurrence_runs(campaign.recurrence, upcoming_from, end, limit=RUNS_PER_CAMPAIGN):
                add(campaign, at, EntryKind.RECURRING)
    entries.sort(key=lambda entry: (entry.at, entry.campaign.name, entry.campaign.pk))
    return entries
