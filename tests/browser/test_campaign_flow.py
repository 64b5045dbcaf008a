"""Browser test: a marketer composes a rich campaign (carousel, buttons, chips, an uploaded image),
checks both previews and submits it; an admin approves it. Playwright drives Debian's chromium
against pytest-django's live server; a screenshot of each step goes to test-output/screenshots/.
"""

import io
from datetime import time

import pytest
from PIL import Image

from accounts.models import Role
from campaigns.models import Campaign, CampaignStatus, ContactListMembership
from tests.accounts.factories import (
    PASSWORD,
    GatewayAccountFactory,
    OrganizationFactory,
    approved_account,
    member,
)
from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path
from tests.campaigns.factories import ConsentFactory, ContactFactory, ContactListFactory

# Playwright's sync API runs an event loop in this thread; the test still talks to the database
# synchronously between browser steps, which Django would otherwise refuse.
pytest.importorskip("playwright.sync_api")

LEGAL = "株式会社ブラウザ商事"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    NEEDS_CHROMIUM,
]



@pytest.fixture
def world(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    organization = OrganizationFactory(name="ブラウザ商事")
    organization.quiet_hours_start = organization.quiet_hours_end = time(0, 0)
    organization.save()
    account = approved_account(organization, display_name="ブラウザショップ", legal_name=LEGAL,
                               rcs_gateway=GatewayAccountFactory(organization=organization))
    members_list = ContactListFactory(organization=organization, name="冬の会員")
    for index in range(3):
        contact = ContactFactory(organization=organization, name=f"佐藤{index}", attributes={"rank": "gold"})
        ConsentFactory(contact=contact)
        ContactListMembership.objects.create(contact_list=members_list, contact=contact)
    return {
        "organization": organization,
        "account": account,
        "list": members_list,
        "marketer": member(organization, Role.MARKETER, username="browser-marketer"),
        "admin": member(organization, Role.ADMIN, username="browser-admin"),
    }


def shot(page, name):
    """The whole page, taken with a viewport as tall as the page so sticky bars stay in place.
    English runs get an ``-en`` suffix; Japanese (the default) none."""
    if getattr(page, "lang", "ja") != "ja":
        name = f"{name}-{page.lang}"
    size = page.viewport_size
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(height, size["height"])})
    page.screenshot(path=screenshot_path(f"campaign-{name}"))
    page.set_viewport_size(size)


def sign_in(browser, live_server, username, lang="ja"):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="ja-JP" if lang == "ja" else "en-US")
    host = live_server.url.split("//", 1)[1].split(":")[0]
    context.add_cookies([{"name": "django_language", "value": lang, "domain": host, "path": "/"}])
    page = context.new_page()
    page.lang = lang
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form:has(input[name=password]) button[type=submit]")
    page.wait_for_load_state()
    return page


def jpeg_file(tmp_path):
    path = tmp_path / "coat.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (800, 480), (180, 60, 50)).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_marketer_composes_a_carousel_and_admin_approves(browser, live_server, world, tmp_path, lang):
    page = sign_in(browser, live_server, "browser-marketer", lang)
    page.goto(f"{live_server.url}/campaigns/")
    assert page.locator("html").get_attribute("lang") == lang
    shot(page, "01-list-empty")

    page.goto(f"{live_server.url}/campaigns/new/")
    page.fill("input[name=name]", "冬のセール カルーセル")
    page.check("input[name=classification][value=promotion]", force=True)
    page.click("label.kind-tab:has(input[value=carousel])")

    # Card 1: image uploaded (checked by its bytes on the server), title, description, one button.
    page.set_input_files("[name='carousel.cards[0].media.upload']", str(jpeg_file(tmp_path)))
    page.wait_for_function(
        "document.querySelector(\"[name='carousel.cards[0].media.url']\").value.includes('/media/')"
    )
    page.fill("[name='carousel.cards[0].title']", "{{name}}様 コート30%オフ")
    page.fill("[name='carousel.cards[0].description']", f"{LEGAL}の冬のセール。配信停止は「停止」と返信")
    page.click("button[name=op][value='add_button:0']")
    page.wait_for_selector("[name='carousel.cards[0].buttons[0].label']")
    page.select_option("[name='carousel.cards[0].buttons[0].type']", "open_url")
    page.fill("[name='carousel.cards[0].buttons[0].label']", "今すぐ購入")
    page.fill("[name='carousel.cards[0].buttons[0].url']", "https://shop.example.jp/coat")

    # Card 2 with a dial button; then a third card, removed again.
    page.fill("[name='carousel.cards[1].title']", "新作ブーツ")
    page.click("button[name=op][value='add_button:1']")
    page.wait_for_selector("[name='carousel.cards[1].buttons[0].label']")
    page.select_option("[name='carousel.cards[1].buttons[0].type']", "dial")
    page.fill("[name='carousel.cards[1].buttons[0].label']", "店舗に電話")
    page.fill("[name='carousel.cards[1].buttons[0].phone']", "+81312345678")
    page.click("button[name=op][value='add_card']")
    page.wait_for_selector("[name='carousel.cards[2].title']")
    page.click("button[name=op][value='remove_card:2']")
    page.wait_for_selector("[name='carousel.cards[2].title']", state="detached")
    assert page.input_value("[name='carousel.cards[0].buttons[0].label']") == "今すぐ購入"

    # A reply chip; its label counter enforces 25 characters as the user types.
    page.click("button[name=op][value='add_chip']")
    page.wait_for_selector("[name='chips[0].label']")
    page.fill("[name='chips[0].label']", "配信停止")
    page.fill("[name='chips[0].postback']", "optout")
    chip_field = page.locator(".field[data-field='chips[0].label']")
    assert chip_field.locator(".counter").inner_text() == "4 / 25"
    assert page.get_attribute("[name='chips[0].label']", "maxlength") == "25"

    sms = f"【{LEGAL}】冬のセール開催中 https://shop.example.jp 配信停止は「停止」と返信"
    page.fill("[name=sms_text]", sms)
    meter = page.locator(".sms-meter")
    assert "UCS-2" in meter.inner_text() and "/ 660" in meter.inner_text()

    page.check(f"input[name=audience_lists][value='{world['list'].pk}']")
    page.wait_for_selector("#audience-count .audience-total")
    assert page.locator("#audience-count .audience-total .value").inner_text() == "3"
    shot(page, "02-composer-carousel")

    # The +Message preview: carousel of two cards with their buttons, the chip and the brand.
    page.wait_for_function("document.querySelectorAll('#preview-phone .rc-carousel .rc-card').length === 2")
    page.wait_for_function("document.querySelector('#preview-phone').innerText.includes('今すぐ購入')")
    preview = page.locator("#preview-phone")
    assert "店舗に電話" in preview.inner_text()
    assert "佐藤0様 コート30%オフ" in preview.inner_text()  # personalized for the sample contact
    assert preview.locator(".rc-chip").inner_text().strip() == "配信停止"
    assert "ブラウザショップ" in preview.inner_text()
    page.wait_for_selector("#compliance .notice-ok")
    suffix = "" if lang == "ja" else f"-{lang}"
    page.locator(".preview-card").screenshot(path=screenshot_path(f"campaign-03-preview-rcs{suffix}"))

    # The SMS preview.
    page.click("label.seg:has(input[name=preview_mode][value=sms])")
    page.wait_for_selector("#preview-phone .sms-bubble")
    assert "冬のセール開催中" in page.locator("#preview-phone .sms-bubble").inner_text()
    assert "UCS-2" in page.locator("#preview-phone .sms-meter-foot").inner_text()
    page.locator(".preview-card").screenshot(path=screenshot_path(f"campaign-04-preview-sms{suffix}"))

    # A bad link is refused beside its field, and nothing typed (or uploaded) is lost.
    page.fill("[name='carousel.cards[0].buttons[0].url']", "javascript:alert(1)")
    page.click("button[name=action][value=save]")
    page.wait_for_selector("[data-error-for='carousel.cards[0].buttons[0].url']")
    assert not Campaign.objects.exists()
    assert page.input_value("[name='carousel.cards[1].buttons[0].phone']") == "+81312345678"
    assert "/media/" in page.input_value("[name='carousel.cards[0].media.url']")
    assert page.input_value("[name=sms_text]") == sms
    shot(page, "05-error-beside-field")
    page.fill("[name='carousel.cards[0].buttons[0].url']", "https://shop.example.jp/coat")

    page.click("button[name=action][value=submit]")
    page.wait_for_url("**/campaigns/*/")
    campaign = Campaign.objects.get()
    assert campaign.status == CampaignStatus.PENDING_APPROVAL
    cards = campaign.content["carousel"]["cards"]
    assert len(cards) == 2
    assert cards[0]["media"]["url"].startswith("http")
    assert cards[0]["buttons"] == [{"type": "open_url", "label": "今すぐ購入", "url": "https://shop.example.jp/coat"}]
    assert campaign.content["chips"][0]["postback"] == "optout"
    shot(page, "06-submitted")
    page.context.close()

    admin = sign_in(browser, live_server, "browser-admin", lang)
    admin.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    assert admin.locator(".previews .rc-carousel .rc-card").count() == 2
    shot(admin, "07-admin-review")
    admin.click(f"form[action='/campaigns/{campaign.pk}/approve/'] button")
    admin.wait_for_load_state()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.APPROVED
    assert campaign.approved_by == world["admin"]
    shot(admin, "08-approved")
    admin.context.close()


def test_operator_watches_the_progress_bar_fill_and_polling_stop(browser, live_server, world):
    from datetime import timedelta

    from django.utils import timezone

    from messaging.models import CampaignCounter, Metric
    from tests.campaigns.factories import CampaignFactory

    member(world["organization"], Role.OPERATOR, username="browser-operator")
    campaign = CampaignFactory(
        organization=world["organization"], official_account=world["account"], name="進行中の配信",
        status=CampaignStatus.RUNNING, approved_by=world["admin"], approved_at=timezone.now(),
        started_at=timezone.now(), created_by=world["marketer"],
    )
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=1)

    def count(metric, n, channel="", detail=""):
        CampaignCounter.objects.update_or_create(
            campaign=campaign, minute=minute, channel=channel, metric=metric, detail=detail, defaults={"count": n}
        )

    count(Metric.TARGETED, 200)
    count(Metric.SENT, 50, "rcs")
    page = sign_in(browser, live_server, "browser-operator")
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/monitor/")
    assert page.get_attribute("#live", "hx-trigger") == "every 2s"
    assert page.get_attribute("[role=progressbar]", "aria-valuenow") == "25.0"
    shot(page, "09-monitor-running")

    count(Metric.SENT, 150, "rcs")
    count(Metric.SENT, 50, "sms")
    count(Metric.FELL_BACK, 50, "sms", "not_capable")
    count(Metric.DELIVERED, 180, "rcs")
    count(Metric.READ, 120, "rcs")
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.COMPLETED, finished_at=timezone.now())
    page.wait_for_function("document.querySelector('[role=progressbar]').getAttribute('aria-valuenow') === '100.0'",
                           timeout=10_000)
    page.wait_for_function("!document.querySelector('#live').hasAttribute('hx-trigger')")
    assert page.locator(".progress.done").count() == 1
    assert page.locator(".reason-list li").count() == 1  # the fallback reason
    assert page.locator(".funnel-row").count() == 6
    shot(page, "10-monitor-finished")
    page.context.close()
