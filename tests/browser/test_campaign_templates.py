"""Browser test: a marketer saves a campaign as a template, sees its thumbnail on the templates page,
starts a new draft from it (the composer opens prefilled), renames and deletes it (after the
confirmation), and clones a campaign into a new draft. In Japanese and English. Screenshots:
test-output/screenshots/template-*.png."""

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatus, CampaignTemplate, Classification
from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path
from tests.browser.test_campaign_flow import LEGAL, sign_in, world  # noqa: F401
from tests.campaigns.factories import CampaignFactory

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), NEEDS_CHROMIUM]

TEXT = f"{LEGAL}より冬のクーポン。配信停止は「停止」と返信してください。"
SMS = f"【{LEGAL}】冬のクーポン 配信停止は「停止」と返信"
WORDS = {
    "ja": {"save_as": "テンプレートとして保存", "use": "使う", "rename": "名前を変更", "delete": "削除",
           "clone": "複製", "save_draft": "下書きを保存", "copy": "（コピー）"},
    "en": {"save_as": "Save as template", "use": "Use", "rename": "Rename", "delete": "Delete",
           "clone": "Clone", "save_draft": "Save draft", "copy": " (copy)"},
}


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_marketer_saves_uses_renames_deletes_a_template_and_clones_a_campaign(browser, live_server, world, lang):
    words = WORDS[lang]
    campaign = CampaignFactory(organization=world["organization"], official_account=world["account"],
                               created_by=world["marketer"], name="冬のクーポン",
                               classification=Classification.PROMOTION, content={"text": TEXT}, sms_text=SMS,
                               status=CampaignStatus.COMPLETED, approved_by=world["admin"],
                               approved_at=timezone.now())
    campaign.audience_lists.add(world["list"])
    page = sign_in(browser, live_server, "browser-marketer", lang)

    # Save as template, from the campaign's page.
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    page.click(f"a.btn:has-text('{words['save_as']}')")
    page.fill("input[name=name]", "冬の定番クーポン")
    page.click("#template-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/campaigns/templates/")
    card = page.locator(".template-card", has_text="冬の定番クーポン")
    assert card.locator(".template-thumb .phone").count() == 1
    assert "冬のクーポン" in card.locator(".template-thumb").inner_text()
    page.screenshot(path=screenshot_path(f"template-01-list-{lang}"), full_page=True)

    # Use it: the composer opens prefilled; saving makes a new draft.
    card.locator(f"a:has-text('{words['use']}')").click()
    page.wait_for_load_state()
    assert page.input_value("input[name=name]") == "冬の定番クーポン"
    assert page.input_value("textarea[name=sms_text]") == SMS
    assert TEXT in page.locator("#preview-phone").inner_text()
    page.screenshot(path=screenshot_path(f"template-02-composer-{lang}"), full_page=True)
    page.click(f"button[name=action][value=save]:has-text('{words['save_draft']}')")
    page.wait_for_load_state()
    started = Campaign.objects.get(name="冬の定番クーポン")
    assert (started.content, started.sms_text, started.status) == ({"text": TEXT}, SMS, CampaignStatus.DRAFT)

    # Rename, then delete after confirming.
    page.goto(f"{live_server.url}/campaigns/templates/")
    page.locator(".template-card", has_text="冬の定番クーポン").locator(f"a:has-text('{words['rename']}')").click()
    page.fill("input[name=name]", "冬クーポン2026")
    page.click("#template-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/campaigns/templates/")
    renamed = page.locator(".template-card", has_text="冬クーポン2026")
    page.once("dialog", lambda dialog: dialog.accept())
    renamed.locator(f"button:has-text('{words['delete']}')").click()
    page.wait_for_selector(".empty-state")
    assert not CampaignTemplate.objects.exists()

    # Clone the finished campaign: a new draft in the composer, without its approval.
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    page.click(f"button:has-text('{words['clone']}')")
    page.wait_for_url(f"{live_server.url}/campaigns/*/edit/")
    assert page.input_value("input[name=name]") == f"冬のクーポン{words['copy']}"
    page.screenshot(path=screenshot_path(f"template-03-clone-{lang}"), full_page=True)
    clone = Campaign.objects.exclude(pk__in=[campaign.pk, started.pk]).get()
    assert clone.status == CampaignStatus.DRAFT and clone.approved_by is None
    assert list(clone.audience_lists.all()) == [world["list"]]
