"""Browser test: a marketer writes a tracked link in the SMS text; the meter and the SMS preview count
and show it as the short URL it becomes; a person's tap on their short URL opens the campaign's page
and counts once. Playwright drives Debian's chromium against pytest-django's live server."""

from datetime import time

import pytest

from accounts.models import Role
from campaigns.models import ContactListMembership
from core.short_links import EXAMPLE_TOKEN, short_link_length
from core.signed_links import short_link_token
from messaging.models import CampaignEngagement, Channel
from messaging.stats import campaign_stats
from tests.accounts.factories import GatewayAccountFactory, OrganizationFactory, approved_account, member
from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path
from tests.browser.test_campaign_flow import sign_in
from tests.campaigns.factories import CampaignFactory, ContactFactory, ContactListFactory
from tests.messaging.factories import DeliveryFactory

PlaywrightError = pytest.importorskip("playwright.sync_api").Error

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), NEEDS_CHROMIUM]

LEGAL = "株式会社リンク商事"
LINK = "{{link:https://shop.example.jp/winter/coupon?from=sms}}"


@pytest.fixture
def world(settings):
    settings.PUBLIC_BASE_URL = "https://pm.example.jp"
    organization = OrganizationFactory(name="リンク商事", quiet_hours_start=time(0, 0), quiet_hours_end=time(0, 0))
    account = approved_account(organization, display_name="リンクショップ", legal_name=LEGAL,
                               rcs_gateway=GatewayAccountFactory(organization=organization))
    audience = ContactListFactory(organization=organization, name="会員")
    contact = ContactFactory(organization=organization, name="鈴木")
    ContactListMembership.objects.create(contact_list=audience, contact=contact)
    member(organization, Role.MARKETER, username="link-marketer")
    return {"organization": organization, "account": account, "contact": contact}


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_composer_counts_and_previews_a_tracked_link_as_sent(browser, live_server, world, lang):
    page = sign_in(browser, live_server, "link-marketer", lang)
    page.goto(f"{live_server.url}/campaigns/new/")
    head = f"【{LEGAL}】クーポン "
    page.fill("[name=sms_text]", head + LINK)
    as_sent = len(head) + short_link_length("https://pm.example.jp/s/")
    assert as_sent < len(head + LINK)
    meter = page.locator(".sms-meter")
    assert meter.locator(".chars").inner_text().startswith(f"{as_sent} / 660")
    help_text = page.locator("#sms-link-help").inner_text()
    assert "{{link:https://example.jp/page}}" in help_text
    assert ("受信者ごとの短縮URL" if lang == "ja" else "their own short URL") in help_text

    page.click("label.seg:has(input[name=preview_mode][value=sms])")
    page.wait_for_function(
        "document.querySelector('#preview-phone .sms-bubble') && "
        f"document.querySelector('#preview-phone .sms-bubble').innerText.includes('{EXAMPLE_TOKEN}')"
    )
    bubble = page.locator("#preview-phone .sms-bubble").inner_text()
    assert f"https://pm.example.jp/s/{EXAMPLE_TOKEN}" in bubble and "{{link" not in bubble
    assert f"{as_sent} / 660" in page.locator("#preview-phone .sms-meter-foot").inner_text()
    suffix = "" if lang == "ja" else f"-{lang}"
    page.locator(".preview-card").screenshot(path=screenshot_path(f"campaign-sms-short-link{suffix}"))


def test_a_tap_on_a_short_url_opens_the_campaigns_page_and_counts_once(browser, live_server, world):
    campaign = CampaignFactory(organization=world["organization"], official_account=world["account"],
                               sms_text=f"【{LEGAL}】クーポン {LINK}")
    delivery = DeliveryFactory(campaign=campaign, contact=world["contact"], channel=Channel.SMS)
    context = browser.new_context(locale="ja-JP")
    page = context.new_page()
    short = f"{live_server.url}/s/{short_link_token(delivery.pk, 0)}"
    # No internet here: the browser is sent on to the shop's page, which it then cannot reach.
    for _tap in range(2):  # the person taps the link in their SMS app twice
        with page.expect_request("https://shop.example.jp/**") as followed:
            try:
                page.goto(short)
            except PlaywrightError:
                pass
        request = followed.value
        assert request.url == "https://shop.example.jp/winter/coupon?from=sms"
        assert request.redirected_from is not None and request.redirected_from.url == short
    assert CampaignEngagement.objects.filter(campaign=campaign).count() == 1
    stats = campaign_stats(campaign)
    assert stats["by_channel"]["sms"]["clicked"] == 1
    context.close()
