"""Browser test (Playwright driving Debian's chromium): a marketer builds 「ゴールド会員で30日以内に
クリックした人」 in the segment builder — rows added, re-drawn and removed with HTMX, the live count
following each change — and saves it. Screenshots under test-output/screenshots/."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from campaigns.models import CustomField, FieldKind, Segment
from messaging.models import CampaignEngagement, EngagementKind
from tests.accounts.factories import PASSWORD, OrganizationFactory, member
from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path
from tests.campaigns.factories import CampaignFactory, ConsentFactory, ContactFactory

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), NEEDS_CHROMIUM]


def count_of(page):
    return page.locator("#segment-count .value").get_attribute("data-count")


def wait_count(page, expected):
    page.wait_for_function(
        "expected => document.querySelector('#segment-count .value')?.dataset.count === expected", arg=expected
    )


def test_marketer_builds_gold_members_who_clicked_in_30_days(browser, live_server):
    org = OrganizationFactory(name="ブラウザ商事")
    member(org, Role.MARKETER, username="seg-marketer")
    CustomField.objects.create(organization=org, key="rank", label="会員ランク", kind=FieldKind.CHOICE,
                               choices=["ゴールド", "シルバー"])
    coupon = CampaignFactory(organization=org, name="春のクーポン")
    for name, rank, clicked in (("金1", "ゴールド", True), ("金2", "ゴールド", False), ("銀", "シルバー", True)):
        contact = ContactFactory(organization=org, name=name, attributes={"rank": rank})
        ConsentFactory(contact=contact)
        if clicked:
            CampaignEngagement.objects.create(campaign=coupon, contact=contact, kind=EngagementKind.CLICKED)

    page = browser.new_context(viewport={"width": 1366, "height": 900}, locale="ja-JP").new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "seg-marketer")
    page.fill("input[name=password]", PASSWORD)
    page.click(".auth-card button[type=submit]")
    page.wait_for_load_state()
    page.goto(live_server.url + reverse("contacts:segment_create"))
    assert page.locator("h1").inner_text() == "新しいセグメント"
    assert count_of(page) == "3"

    page.fill("#id_name", "ゴールド会員で30日以内にクリックした人")
    page.click("#add-condition")  # a custom field row
    page.wait_for_selector("#condition-0")
    page.select_option("#c-0-value", "ゴールド")
    wait_count(page, "2")

    page.select_option("#add-type", "engagement")
    page.click("#add-condition")
    page.wait_for_selector("#c-1-action")
    page.select_option("#c-1-action", "clicked")
    wait_count(page, "1")
    page.screenshot(path=screenshot_path("segment-builder"), full_page=True)

    page.select_option("#c-1-type", "carrier")  # the row is re-drawn for its new kind
    page.wait_for_selector("#c-1-value >> option[value=docomo]", state="attached")
    page.locator("#condition-1 button", has_text="削除").click()
    wait_count(page, "2")
    page.select_option("#add-type", "engagement")
    page.click("#add-condition")
    page.wait_for_selector("#c-1-action")  # the removed row's index is free again
    page.select_option("#c-1-action", "clicked")
    page.fill("#c-1-days", "30")
    wait_count(page, "1")
    assert re.search(r"1\s*人が一致", page.locator("#segment-count").inner_text())

    page.click("button[type=submit].btn-primary")
    page.wait_for_url(live_server.url + reverse("contacts:segments"))
    segment = Segment.objects.get(organization=org)
    assert segment.name == "ゴールド会員で30日以内にクリックした人"
    assert segment.conditions == [
        {"type": "field", "field": "rank", "op": "eq", "value": "ゴールド"},
        {"type": "engagement", "action": "clicked", "op": "did", "campaign": None, "days": 30},
    ]
    assert segment.updated_at <= timezone.now()
