"""Run control without the engine: when a launch will really start sending (the launch confirmation)."""

from datetime import datetime, time

import pytest

from campaigns.compliance import TOKYO, quiet_hours_hold
from campaigns.models import Classification
from messaging.runs import LaunchTiming, campaign_launch_timing
from tests.accounts.factories import OrganizationFactory
from tests.campaigns.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def at(wall: str) -> datetime:
    return datetime.fromisoformat(wall).replace(tzinfo=TOKYO)


@pytest.fixture
def org():
    return OrganizationFactory(quiet_hours_start=time(21, 0), quiet_hours_end=time(9, 0))


@pytest.mark.parametrize("now,opens", [
    ("2026-12-03T22:30", "2026-12-04T09:00"),  # before midnight: the next morning
    ("2026-12-04T05:00", "2026-12-04T09:00"),  # after midnight: the same morning
    ("2026-12-04T08:59", "2026-12-04T09:00"),
])
def test_a_promotion_launched_in_quiet_hours_starts_when_the_engine_would_release_it(org, now, opens):
    campaign = CampaignFactory(organization=org, classification=Classification.PROMOTION)
    timing = campaign_launch_timing(campaign, now=at(now))
    assert timing == LaunchTiming(starts_at=at(opens), held_by_quiet_hours=True)
    assert timing.starts_at == quiet_hours_hold(org, Classification.PROMOTION, now=at(now))  # one decision


def test_outside_quiet_hours_or_transactional_it_starts_at_once(org):
    promotion = CampaignFactory(organization=org, classification=Classification.PROMOTION)
    assert campaign_launch_timing(promotion, now=at("2026-12-04T09:00")) == LaunchTiming()
    transactional = CampaignFactory(organization=org, classification=Classification.TRANSACTION)
    assert campaign_launch_timing(transactional, now=at("2026-12-03T23:00")) == LaunchTiming()


def test_a_scheduled_launch_inside_quiet_hours_starts_when_they_end(org):
    campaign = CampaignFactory(organization=org, classification=Classification.PROMOTION,
                               scheduled_at=at("2026-12-03T23:00"))
    timing = campaign_launch_timing(campaign, now=at("2026-12-03T12:00"))
    assert timing == LaunchTiming(starts_at=at("2026-12-04T09:00"), held_by_quiet_hours=True,
                                  requested_at=at("2026-12-03T23:00"))
    daytime = CampaignFactory(organization=org, classification=Classification.PROMOTION,
                              scheduled_at=at("2026-12-03T15:00"))
    assert campaign_launch_timing(daytime, now=at("2026-12-03T12:00")) == LaunchTiming(
        starts_at=at("2026-12-03T15:00"), requested_at=at("2026-12-03T15:00"))


def test_a_recurring_campaign_starts_on_its_schedule(org):
    campaign = CampaignFactory(organization=org, classification=Classification.PROMOTION, recurrence="0 22 * * *")
    assert campaign_launch_timing(campaign, now=at("2026-12-03T12:00")) == LaunchTiming(recurring=True)
