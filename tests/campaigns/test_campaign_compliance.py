"""Display rules (formal name and opt-out in both texts) and the quiet-hours notice."""

from datetime import datetime, time

import pytest

from campaigns.compliance import (
    TOKYO,
    display_rule_problems,
    quiet_hours_hold,
    quiet_hours_notice,
)
from campaigns.models import Campaign, Classification
from core.quiet_hours import in_quiet_hours
from tests.accounts.factories import OfficialAccountFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

LEGAL = "株式会社テスト商事"


def make(classification=Classification.PROMOTION, content=None, sms_text=""):
    organization = OrganizationFactory()
    account = OfficialAccountFactory(organization=organization, legal_name=LEGAL)
    return Campaign(organization=organization, official_account=account, classification=classification,
                    content=content or {"text": ""}, sms_text=sms_text)


def test_a_complete_promotion_has_no_problems():
    campaign = make(content={"text": f"{LEGAL}です。配信停止は「停止」と返信"}, sms_text=f"【{LEGAL}】停止と返信で配信停止")
    assert display_rule_problems(campaign) == []


def test_missing_name_and_opt_out_in_both_texts():
    problems = display_rule_problems(make(content={"text": "セール"}, sms_text="セール"))
    assert len(problems) == 4
    assert any("+Message content must name" in p for p in problems)
    assert any("SMS text must name" in p for p in problems)
    assert any("+Message content must say how to opt out" in p for p in problems)
    assert any("SMS text must say how to opt out" in p for p in problems)


def test_transactions_are_exempt():
    assert display_rule_problems(make(Classification.TRANSACTION, {"text": "発送しました"}, "発送しました")) == []


def test_opt_out_by_chip_link_placeholder_and_full_width_keyword():
    content = {
        "carousel": {"cards": [{"title": LEGAL}, {"title": "B"}]},
        "chips": [{"type": "reply", "label": "配信停止", "postback": "optout"}],
    }
    assert display_rule_problems(make(content=content, sms_text=f"{LEGAL} 解除: {{{{opt_out_url}}}}")) == []
    assert display_rule_problems(make(content={"text": f"{LEGAL} ＳＴＯＰで停止"}, sms_text=f"{LEGAL} reply STOP")) == []


def test_formal_name_in_a_card_button_label_counts_and_spaces_are_ignored():
    content = {"card": {"title": "株式会社 テスト商事", "buttons": [{"type": "open_url", "label": "配信停止",
                                                               "url": "https://example.jp/{{opt_out_url}}"}]}}
    assert display_rule_problems(make(content=content, sms_text=f"{LEGAL} 配信停止は停止と返信")) == []


def test_quiet_hours_window_spans_midnight():
    organization = OrganizationFactory(quiet_hours_start=time(21, 0), quiet_hours_end=time(9, 0))
    assert in_quiet_hours(organization, datetime(2026, 1, 1, 22, 0, tzinfo=TOKYO))
    assert in_quiet_hours(organization, datetime(2026, 1, 1, 8, 59, tzinfo=TOKYO))
    assert not in_quiet_hours(organization, datetime(2026, 1, 1, 9, 0, tzinfo=TOKYO))
    assert not in_quiet_hours(organization, datetime(2026, 1, 1, 12, 0, tzinfo=TOKYO))


def test_quiet_hours_running_hold_holds_promotions_until_the_window_opens_to_the_second():
    organization = OrganizationFactory(quiet_hours_start=time(21, 0), quiet_hours_end=time(9, 0, 30))
    night = datetime(2026, 1, 1, 23, 0, tzinfo=TOKYO)
    assert quiet_hours_hold(organization, Classification.PROMOTION, night) == datetime(2026, 1, 2, 9, 0, 30, tzinfo=TOKYO)
    early = datetime(2026, 1, 2, 9, 0, 10, tzinfo=TOKYO)
    assert quiet_hours_hold(organization, Classification.PROMOTION, early) == datetime(2026, 1, 2, 9, 0, 30, tzinfo=TOKYO)
    assert quiet_hours_hold(organization, Classification.PROMOTION, datetime(2026, 1, 2, 9, 0, 30, tzinfo=TOKYO)) is None
    assert quiet_hours_hold(organization, Classification.TRANSACTION, night) is None


def test_quiet_hours_notice_for_times_and_crontabs():
    organization = OrganizationFactory(quiet_hours_start=time(21, 0), quiet_hours_end=time(9, 0))
    night = datetime(2026, 1, 1, 23, 30, tzinfo=TOKYO)
    day = datetime(2026, 1, 1, 11, 0, tzinfo=TOKYO)
    assert "quiet hours" in quiet_hours_notice(organization, Classification.PROMOTION, scheduled_at=night)
    assert quiet_hours_notice(organization, Classification.PROMOTION, scheduled_at=day) is None
    assert quiet_hours_notice(organization, Classification.TRANSACTION, scheduled_at=night) is None
    assert quiet_hours_notice(organization, Classification.PROMOTION, recurrence="0 22 * * *")
    assert quiet_hours_notice(organization, Classification.PROMOTION, recurrence="0 10 * * 1") is None
    assert quiet_hours_notice(organization, Classification.PROMOTION, recurrence="30 8-10 * * *")
    assert "now quiet hours" in quiet_hours_notice(organization, Classification.PROMOTION, now=night)
