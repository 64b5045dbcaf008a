"""The dashboard: numbers from the counters (never from Delivery rows), charts, campaigns, roles."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from campaigns.models import CampaignStatus
from console.dashboard import dashboard_data
from core.charts import bar_chart, donut_chart
from messaging.models import CampaignCounter, Conversation, CounterDelta, Metric
from tests.accounts.factories import OrganizationFactory, UserFactory, approved_account, member
from tests.campaigns.factories import CampaignFactory, ContactFactory

pytestmark = pytest.mark.django_db

ALL_ROLES = [Role.OWNER, Role.ADMIN, Role.MARKETER, Role.OPERATOR, Role.VIEWER]


@pytest.fixture
def org():
    return OrganizationFactory()


@pytest.fixture(autouse=True)
def _empty_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def minute(dt):
    return dt.replace(second=0, microsecond=0)


def add_counts(campaign, when, channel, **metrics):
    for metric, count in metrics.items():
        CampaignCounter.objects.create(campaign=campaign, minute=minute(when), channel=channel, metric=metric,
                                       count=count)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_dashboard_renders_for_every_role(client, org, role):
    client.force_login(member(org, role))
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Sent today" in page and "<svg" in page
    assert "Recent replies" in page and "No replies to show yet" in page


def test_dashboard_for_a_user_without_organization(client):
    client.force_login(UserFactory())
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert "not a member of any organization" in response.content.decode()


def test_dashboard_anonymous_redirects(client):
    assert client.get(reverse("dashboard")).status_code == 302


def test_numbers_come_from_counters_and_deltas(client, org):
    now = timezone.now()
    campaign = CampaignFactory(organization=org)
    add_counts(campaign, now, "rcs", sent=80, delivered=70, read=35)
    add_counts(campaign, now, "sms", sent=20, delivered=20, fell_back=20)
    CounterDelta.objects.create(campaign=campaign, minute=minute(now), channel="rcs", metric=Metric.SENT, delta=10)
    CounterDelta.objects.create(campaign=campaign, minute=minute(now), channel="rcs", metric=Metric.DELIVERED,
                                delta=10)
    # another organization's counters are not ours
    foreign = CampaignFactory(organization=OrganizationFactory())
    add_counts(foreign, now, "rcs", sent=999)

    data = dashboard_data(org, now=now)
    assert data["today"]["sent"] == 110
    assert data["today"]["rcs"] == 90 and data["today"]["sms"] == 20
    assert data["today"]["delivery_rate"] == 90.9  # 100 / 110
    assert data["today"]["read_rate"] == 43.8  # 35 / 80 delivered by +Message
    assert data["month"]["sent"] >= 110
    assert data["month"]["fell_back"] >= 20

    client.force_login(member(org, Role.VIEWER))
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("dashboard")).content.decode()
    assert "110" in page and "90.9%" in page
    assert not any("messaging_delivery" in query["sql"] for query in queries.captured_queries)


def test_month_and_today_are_split_in_japan_time(org):
    campaign = CampaignFactory(organization=org)
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    add_counts(campaign, now, "rcs", sent=5)
    add_counts(campaign, yesterday, "rcs", sent=7)
    data = dashboard_data(org, now=now)
    assert data["today"]["sent"] == 5
    bars = {bar["day"]: bar["total"] for bar in data["chart"]["bars"]}
    today = timezone.localtime(now).date()
    assert bars[today] == 5 and bars[today - timedelta(days=1)] == 7
    assert len(bars) == 14


def test_running_and_scheduled_campaigns_listed(client, org):
    approver = UserFactory()
    running = CampaignFactory(organization=org, name="配信中のキャンペーン", status=CampaignStatus.RUNNING,
                              approved_by=approver, approved_at=timezone.now(), started_at=timezone.now())
    scheduled = CampaignFactory(organization=org, name="予約済みのキャンペーン", status=CampaignStatus.SCHEDULED,
                                approved_by=approver, approved_at=timezone.now(),
                                scheduled_at=timezone.now() + timedelta(days=1))
    CampaignFactory(organization=org, name="下書き")
    CampaignFactory(organization=OrganizationFactory(), name="他社の配信", status=CampaignStatus.RUNNING,
                    approved_by=approver, approved_at=timezone.now())
    now = timezone.now()
    add_counts(running, now, "", targeted=200)
    add_counts(running, now, "rcs", sent=40, failed=5)
    add_counts(running, now, "sms", sent=5)
    client.force_login(member(org, Role.OPERATOR))
    page = client.get(reverse("dashboard")).content.decode()
    assert running.name in page and scheduled.name in page
    assert 'aria-valuenow="25"' in page and "50 of 200 sent" in page
    assert "下書き" not in page and "他社の配信" not in page


def test_empty_dashboard_says_what_to_do(client, org):
    client.force_login(member(org, Role.MARKETER))
    page = client.get(reverse("dashboard")).content.decode()
    assert "Nothing sent in the last 14 days" in page
    assert "Nothing is sending" in page and "Nothing scheduled" in page


def test_finished_days_are_cached_and_today_is_live(org):
    campaign = CampaignFactory(organization=org)
    now = timezone.now()
    add_counts(campaign, now - timedelta(days=1), "rcs", sent=7)
    add_counts(campaign, now, "rcs", sent=5)
    first = dashboard_data(org, now=now)
    CampaignCounter.objects.create(campaign=campaign, minute=minute(now), channel="sms", metric=Metric.SENT, count=3)
    with CaptureQueriesContext(connection) as queries:
        second = dashboard_data(org, now=now)
    assert second["today"]["sent"] == first["today"]["sent"] + 3
    assert second["month"]["sent"] == first["month"]["sent"] + 3
    counter_queries = [q for q in queries.captured_queries if "messaging_campaigncounter" in q["sql"]]
    assert len(counter_queries) == 1  # only today's rows were read again


def test_chart_geometry():
    chart = bar_chart([("d1", 0, 0), ("d2", 30, 10), ("d3", 10, 0)])
    assert not chart["empty"]
    tallest = chart["bars"][1]
    assert tallest["rcs_h"] + tallest["sms_h"] <= chart["height"]
    assert chart["grid"][-1]["value"] >= 40
    assert bar_chart([("d1", 0, 0)])["empty"]
    for peak in (0, 3, 5, 7, 9, 11, 25, 99, 101, 2500, 4001, 123456):
        grid = [line["value"] for line in bar_chart([("d", peak, 0)])["grid"]]
        assert grid[-1] >= peak and grid[-1] == 2 * grid[1]
    donut = donut_chart([("rcs", 75), ("sms", 25)])
    assert [segment["percent"] for segment in donut["segments"]] == [75.0, 25.0]
    assert donut_chart([("rcs", 0), ("sms", 0)])["total"] == 0


def test_dashboard_shows_the_oldest_unanswered_wait_to_those_who_answer(client, org):
    account = approved_account(org)
    contact = ContactFactory(organization=org, phone="+819012345678", name="山田花子")
    conversation = Conversation.objects.create(organization=org, official_account=account, contact=contact,
                                               waiting_since=timezone.now() - timedelta(hours=2, minutes=1))
    client.force_login(member(org, Role.OPERATOR))
    page = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Oldest unanswered: 2\xa0hours" in page and "山田花子" in page
    assert reverse("messaging:inbox_conversation", args=[conversation.pk]) in page
    client.force_login(member(org, Role.MARKETER))
    assert 'id="oldest-waiting"' not in client.get(reverse("dashboard")).content.decode()
    Conversation.objects.filter(pk=conversation.pk).update(waiting_since=None)
    client.force_login(member(org, Role.OWNER))
    assert "Nobody is waiting for an answer." in client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
