"""The monthly usage page and its CSV export."""

import csv
import io
from datetime import datetime, timedelta

import pytest
from django.urls import reverse

from accounts.models import OfficialAccount, Role
from audit.models import AuditEvent
from campaigns.compliance import TOKYO
from messaging.models import Channel, DeliveryStatus
from tests.accounts.factories import OrganizationFactory, approved_account, member
from tests.campaigns.factories import CampaignFactory
from tests.messaging.cost_fixtures import priced_organization
from tests.messaging.factories import DeliveryFactory

pytestmark = pytest.mark.django_db

NOVEMBER = datetime(2026, 11, 10, 12, tzinfo=TOKYO)


def login(client, user, language="en"):
    from django.conf import settings

    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


@pytest.fixture
def priced():
    p = priced_organization()
    p.other = OfficialAccount.objects.create(organization=p.org, display_name="=SUM(A1)", legal_name="株式会社別",
                                             sms_sender_id="OTHER", sms_gateway=p.cm)
    campaign = CampaignFactory(organization=p.org, official_account=p.account)
    DeliveryFactory(campaign=campaign, channel=Channel.RCS, carrier="docomo", status=DeliveryStatus.READ,
                    sent_at=NOVEMBER)
    DeliveryFactory(campaign=campaign, channel=Channel.SMS, carrier="", sms_segments=3, status=DeliveryStatus.SENT,
                    sent_at=NOVEMBER)
    DeliveryFactory(campaign=campaign, channel=Channel.SMS, carrier="", sms_segments=1, status=DeliveryStatus.SENT,
                    sent_at=NOVEMBER - timedelta(days=30))  # October
    single = DeliveryFactory(campaign=CampaignFactory(organization=p.org, official_account=p.account),
                             channel=Channel.SMS, carrier="au", sms_segments=1, status=DeliveryStatus.DELIVERED,
                             sent_at=NOVEMBER)
    single.campaign, single.official_account = None, p.other
    single.save()
    return p


def test_the_usage_page_shows_messages_and_cost_by_account_channel_and_carrier(client, priced):
    body = login(client, member(priced.org, Role.ADMIN)).get(reverse("usage"), {"month": "2026-11"}).content.decode()
    total = body[body.index('id="usage-total"'):]
    assert "¥16.7" in total  # 3.5 + 3 × 3.3 + 3.3
    assert "+Message: 1 messages · SMS: 2 messages, 4 segments" in total
    assert priced.account.display_name in body and "=SUM(A1)" in body
    assert "¥13.4" in body and "¥3.3" in body
    october = client.get(reverse("usage"), {"month": "2026-10"}).content.decode()
    assert "¥3.3" in october and "¥16.7" not in october


def test_the_usage_page_for_one_official_account(client, priced):
    login(client, member(priced.org, Role.MARKETER))
    body = client.get(reverse("usage"), {"month": "2026-11", "account": priced.other.pk}).content.decode()
    total = body[body.index('id="usage-total"'):]
    assert "¥3.3" in total and "¥16.7" not in body


def test_an_empty_month_says_what_to_do(client, priced):
    body = login(client, member(priced.org, Role.OWNER)).get(reverse("usage"), {"month": "2020-01"}).content.decode()
    assert "Nothing sent this month" in body and "launch a campaign" in body


def test_the_usage_page_is_in_japanese(client, priced):
    body = login(client, member(priced.org, Role.OWNER), "ja").get(reverse("usage"), {"month": "2026-11"}).content.decode()
    assert "利用状況" in body and "全体" in body


def test_the_usage_csv_has_one_line_per_account_channel_and_carrier(client, priced):
    owner = member(priced.org, Role.OWNER)
    response = login(client, owner).get(reverse("usage_export"), {"month": "2026-11"})
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="usage-2026-11.csv"' in response["Content-Disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["Month", "Official account", "Channel (rcs = +Message, sms = SMS)", "Carrier", "Messages", "SMS segments", "Cost (yen)",
                       "Messages without a price"]
    assert sorted(rows[1:]) == sorted([
        ["2026-11", priced.account.display_name, "rcs", "docomo", "1", "", "3.5", "0"],
        ["2026-11", priced.account.display_name, "sms", "Any carrier", "1", "3", "9.9", "0"],
        ["2026-11", "'=SUM(A1)", "sms", "au", "1", "1", "3.3", "0"],  # a formula is neutralised
    ])
    assert AuditEvent.objects.filter(action="export.usage", organization_id=priced.org.pk).exists()
    one = client.get(reverse("usage_export"), {"month": "2026-11", "account": priced.other.pk})
    assert f"usage-2026-11-account-{priced.other.pk}.csv" in one["Content-Disposition"]
    assert len(one.content.decode().strip().splitlines()) == 2


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_operators_and_viewers_cannot_read_usage(client, priced, role):
    login(client, member(priced.org, role))
    assert client.get(reverse("usage")).status_code == 403
    assert client.get(reverse("usage_export")).status_code == 403


def test_another_organizations_account_answers_404(client, priced):
    other = approved_account(OrganizationFactory())
    login(client, member(priced.org, Role.OWNER))
    assert client.get(reverse("usage"), {"account": other.pk}).status_code == 404
    assert client.get(reverse("usage_export"), {"account": other.pk}).status_code == 404
