"""The campaign calendar (campaigns.views.calendar, campaigns.calendar): month and week views of
scheduled, recurring (upcoming runs from the crontab) and sent campaigns, quiet hours shaded, only the
member's organization, Japanese first."""

import re
from datetime import date, datetime, time, timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from campaigns.calendar import EntryKind, calendar_entries
from campaigns.compliance import TOKYO
from campaigns.models import CampaignStatus, Classification
from tests.accounts.factories import OrganizationFactory, approved_account, member
from tests.campaigns.factories import CampaignFactory

pytestmark = pytest.mark.django_db

URL = reverse("campaigns:calendar")


@pytest.fixture
def org():
    return OrganizationFactory()  # quiet hours 21:00–09:00, the default


@pytest.fixture
def owner(org):
    return member(org, Role.OWNER, username="owner-user")


@pytest.fixture
def account(org):
    return approved_account(org)


def login(client, user, language="en"):
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def future_month() -> date:
    """The first day of a month wholly in the future (its grid too)."""
    return (timezone.localdate(timezone.now(), TOKYO) + timedelta(days=70)).replace(day=1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TOKYO)


def campaign(org, account, user, **kwargs):
    values = {"organization": org, "official_account": account, "created_by": user,
              "classification": Classification.PROMOTION}
    if kwargs.get("status") not in (None, CampaignStatus.DRAFT, CampaignStatus.PENDING_APPROVAL):
        values.update(approved_by=user, approved_at=timezone.now())
    values.update(kwargs)
    return CampaignFactory(**values)


def entries_of(body: str, pk: int) -> list[str]:
    """The calendar entries (their opening tags and time) that link to one campaign."""
    return re.findall(rf'<a class="cal-entry[^"]*"[^>]*href="/campaigns/{pk}/"', body)


def test_month_shows_scheduled_recurring_and_links_each_campaign(client, org, owner, account):
    month = future_month()
    once = campaign(org, account, owner, name="年末セール", status=CampaignStatus.SCHEDULED,
                    scheduled_at=at(month.replace(day=10), 14))
    weekly = campaign(org, account, owner, name="週次クーポン", status=CampaignStatus.SCHEDULED,
                      recurrence="0 10 * * 1")
    draft = campaign(org, account, owner, name="下書きの予定", status=CampaignStatus.DRAFT,
                     scheduled_at=at(month.replace(day=12), 11))
    body = login(client, owner).get(URL, {"view": "month", "date": month.isoformat()}).content.decode()
    assert month.strftime("%B %Y") in body
    assert len(entries_of(body, once.pk)) == 1
    assert "kind-scheduled" in entries_of(body, once.pk)[0]
    # One upcoming run per Monday of the grid (a row per week), computed from the crontab.
    weeks = body.split("<tbody>", 1)[1].split("</tbody>", 1)[0].count("<tr>")
    assert len(entries_of(body, weekly.pk)) == weeks
    assert all("kind-recurring" in tag for tag in entries_of(body, weekly.pk))
    assert "↻10:00" in body and "Every Monday at 10:00" in body
    # Status colours are the campaign list's badges.
    assert "badge badge-info badge-dot" in entries_of(body, once.pk)[0]
    assert "badge status-draft" in entries_of(body, draft.pk)[0]
    listing = client.get(reverse("campaigns:list")).content.decode()
    assert '<span class="badge badge-info badge-dot">Scheduled</span>' in listing


def test_week_view_places_runs_in_their_hour_and_shades_quiet_hours(client, org, owner, account):
    month = future_month()
    wednesday = month + timedelta(days=(2 - month.weekday()) % 7)
    late = campaign(org, account, owner, name="夜のお知らせ", status=CampaignStatus.SCHEDULED,
                    scheduled_at=at(wednesday, 22, 30))
    notice = campaign(org, account, owner, name="夜の発送連絡", status=CampaignStatus.SCHEDULED,
                      classification=Classification.TRANSACTION, scheduled_at=at(wednesday, 22, 30))
    weekly = campaign(org, account, owner, name="週次クーポン", status=CampaignStatus.SCHEDULED,
                      recurrence="0 10 * * 1,3")
    body = login(client, owner).get(URL, {"view": "week", "date": wednesday.isoformat()}).content.decode()
    rows = re.findall(r'<tr class="([^"]*)">\s*<th scope="row" class="cal-hour">(\d\d):00', body)
    assert len(rows) == 24
    quiet = [hour for css, hour in rows if css == "quiet-hour"]
    assert quiet == ["00", "01", "02", "03", "04", "05", "06", "07", "08", "21", "22", "23"]
    assert "Quiet hours 21:00–09:00" in body
    # A promotion due in quiet hours is marked (it waits); a transactional message is exempt.
    assert "in-quiet" in entries_of(body, late.pk)[0]
    assert "in-quiet" not in entries_of(body, notice.pk)[0]
    assert len(entries_of(body, weekly.pk)) == 2  # Monday and Wednesday of this week
    ten = body.split('class="cal-hour">10:00', 1)[1].split("</tr>", 1)[0]
    assert ten.count(f'href="/campaigns/{weekly.pk}/"') == 2


def test_a_window_on_the_half_hour_shades_its_hours_partly(client, org, owner):
    org.quiet_hours_start, org.quiet_hours_end = time(21, 30), time(8, 30)
    org.save()
    body = login(client, owner).get(URL, {"view": "week"}).content.decode()
    rows = dict((hour, css) for css, hour in re.findall(r'<tr class="([^"]*)">\s*<th scope="row" class="cal-hour">(\d\d):00', body))
    assert (rows["21"], rows["22"], rows["08"], rows["09"], rows["12"]) == ("quiet-partly", "quiet-hour", "quiet-partly", "", "")


def test_no_quiet_hours_means_nothing_shaded(client, org, owner):
    org.quiet_hours_start = org.quiet_hours_end = time(0, 0)
    org.save()
    body = login(client, owner).get(URL, {"view": "week"}).content.decode()
    assert '<tr class="quiet' not in body
    assert "No quiet hours are set for this organization." in body


def test_sent_campaigns_and_recurring_runs_appear_on_the_day_they_started(client, org, owner, account):
    past = (timezone.localdate(timezone.now(), TOKYO) - timedelta(days=70)).replace(day=1)
    parent = campaign(org, account, owner, name="毎月の会員特典", status=CampaignStatus.SCHEDULED,
                      recurrence="0 10 1 * *")
    run = campaign(org, account, owner, name="毎月の会員特典（実行）", status=CampaignStatus.COMPLETED,
                   parent=parent, started_at=at(past, 10), finished_at=at(past, 11))
    sent = campaign(org, account, owner, name="春のセール", status=CampaignStatus.COMPLETED,
                    started_at=at(past.replace(day=15), 22), finished_at=at(past.replace(day=15), 23))
    body = login(client, owner).get(URL, {"view": "month", "date": past.isoformat()}).content.decode()
    assert "kind-sent" in entries_of(body, run.pk)[0]
    assert "kind-sent" in entries_of(body, sent.pk)[0]
    assert "in-quiet" not in entries_of(body, sent.pk)[0]  # it was sent; nothing waits any more
    # Past months show no projected runs: what happened are the sent runs.
    assert entries_of(body, parent.pk) == []


def test_another_organizations_campaigns_never_appear(client, org, owner, account):
    month = future_month()
    other = OrganizationFactory()
    other_owner = member(other, Role.OWNER, username="other-owner")
    other_account = approved_account(other)
    campaign(other, other_account, other_owner, name="他社の予約", status=CampaignStatus.SCHEDULED,
             scheduled_at=at(month.replace(day=3), 10))
    campaign(other, other_account, other_owner, name="他社の繰り返し", status=CampaignStatus.SCHEDULED,
             recurrence="0 10 * * *")
    campaign(other, other_account, other_owner, name="他社の配信済み", status=CampaignStatus.COMPLETED,
             started_at=at(month.replace(day=4), 10))
    mine = campaign(org, account, owner, name="自社の予約", status=CampaignStatus.SCHEDULED,
                    scheduled_at=at(month.replace(day=3), 10))
    login(client, owner)
    for view in ("month", "week"):
        body = client.get(URL, {"view": view, "date": month.replace(day=3).isoformat()}).content.decode()
        assert "他社" not in body
        assert len(entries_of(body, mine.pk)) == 1
    assert [e.campaign.pk for e in calendar_entries(org, at(month, 0), at(month + timedelta(days=28), 0))] == [mine.pk]


def test_empty_month_says_what_to_do(client, org, owner):
    body = login(client, owner).get(URL, {"date": future_month().isoformat()}).content.decode()
    assert "Nothing is scheduled or sent this month" in body
    assert "choose “At a date and time” or “Recurring”" in body
    assert f'href="{reverse("campaigns:create")}"' in body


def test_navigation_swaps_the_calendar_partial(client, org, owner):
    month = future_month()
    login(client, owner)
    page = client.get(URL, {"view": "month", "date": month.isoformat()}).content.decode()
    following = (month + timedelta(days=32)).replace(day=1)
    assert f'hx-get="{URL}?view=month&date={following.isoformat()}"' in page
    assert 'hx-target="#calendar"' in page
    partial = client.get(URL, {"view": "month", "date": following.isoformat()},
                         HTTP_HX_REQUEST="true", HTTP_HX_TARGET="calendar").content.decode()
    assert partial.lstrip().startswith('<section id="calendar"')
    assert "<html" not in partial and following.strftime("%B %Y") in partial


def test_bad_dates_fall_back_to_this_month(client, org, owner):
    today = timezone.localdate(timezone.now(), TOKYO)
    login(client, owner)
    for value in ("not-a-date", "2026-13-40", "0001-01-01"):
        response = client.get(URL, {"view": "year", "date": value})
        assert response.status_code == 200
    assert today.strftime("%B %Y") in client.get(URL, {"date": "nope"}).content.decode()


def test_japanese_first(client, org, owner, account):
    month = future_month()
    weekly = campaign(org, account, owner, name="週次クーポン", status=CampaignStatus.SCHEDULED,
                      recurrence="0 10 * * 1")
    login(client, owner, "ja")
    body = client.get(URL, {"view": "month", "date": month.isoformat()}).content.decode()
    assert f"{month.year}年{month.month}月" in body
    headers = re.findall(r'<th scope="col" class="dow-\d">(.)</th>', body)
    assert headers == ["日", "月", "火", "水", "木", "金", "土"]
    assert entries_of(body, weekly.pk)
    assert "毎週月曜 10:00" in body
    assert "キャンペーンカレンダー" in body and "配信自粛時間帯 21:00〜09:00" in body
    week = client.get(URL, {"view": "week", "date": month.isoformat()}).content.decode()
    assert "年" in week and "月" in week


def test_every_member_may_look(client, org, owner):
    viewer = member(org, Role.VIEWER, username="viewer-user")
    response = login(client, viewer).get(URL)
    assert response.status_code == 200
    assert f'href="{reverse("campaigns:create")}"' not in response.content.decode().split('id="calendar"', 1)[0]


def test_entries_kinds_from_the_selector(org, owner, account):
    month = future_month()
    campaign(org, account, owner, status=CampaignStatus.SCHEDULED, recurrence="30 9 * * *")
    cancelled = campaign(org, account, owner, status=CampaignStatus.CANCELLED, recurrence="0 10 * * *")
    entries = calendar_entries(org, at(month, 0), at(month + timedelta(days=3), 0))
    assert [(e.kind, e.at) for e in entries] == [(EntryKind.RECURRING, at(month + timedelta(days=n), 9, 30))
                                                 for n in range(3)]
    assert all(e.campaign.pk != cancelled.pk for e in entries)
    assert all(e.quiet is False for e in entries)  # 09:30 is after the window closes at 09:00


def test_the_sidebar_and_the_campaign_list_link_the_calendar(client, org, owner):
    login(client, owner)
    listing = client.get(reverse("campaigns:list")).content.decode()
    assert listing.count(f'href="{URL}"') == 2  # the sidebar and the list's actions
    page = client.get(URL).content.decode()
    assert f'<a href="{URL}" class="active">' in page
