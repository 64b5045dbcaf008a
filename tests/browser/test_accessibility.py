"""Accessibility browser tests (select them with ``pytest -k a11y``).

Deque's axe-core (installed from the npm registry into tests/browser/axe/ by ``make install-test``)
is injected into each page and run there; a test fails on any serious or critical finding and names
the rule, the elements and what to fix. Every page is checked in Japanese and in English. Two more
tests use the keyboard alone: a marketer composes a message and previews it as SMS, an operator opens
a conversation and sends a reply. Screenshots: test-output/screenshots/a11y-*.png.
"""

import json
import re
from datetime import time, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.models import Role
from campaigns.models import Campaign, CampaignStatus, ContactListMembership, ListPurpose
from messaging.models import CampaignCounter, Conversation, ConversationMessage, Metric
from tests.accounts.factories import (
    PASSWORD,
    GatewayAccountFactory,
    OrganizationFactory,
    approved_account,
    member,
)
from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path
from tests.campaigns.factories import CampaignFactory, ConsentFactory, ContactFactory, ContactListFactory

pytest.importorskip("playwright.sync_api")

AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
NEEDS_AXE = pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed (make install-test)")
BLOCKING = ("serious", "critical")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    NEEDS_CHROMIUM,
    NEEDS_AXE,
]

CSV = "電話番号,氏名,同意日時\r\n090-1234-5678,山田 太郎,2024/04/01 10:00\r\n080-5555-6666,鈴木 一郎,2024/06/01\r\n"


@pytest.fixture
def world(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    organization = OrganizationFactory(name="アクセシビリティ商事")
    organization.quiet_hours_start = organization.quiet_hours_end = time(0, 0)
    organization.save()
    account = approved_account(organization, display_name="あくせすショップ", legal_name="株式会社アクセス商事",
                               rcs_gateway=GatewayAccountFactory(organization=organization))
    members_list = ContactListFactory(organization=organization, name="会員（販促）", purpose=ListPurpose.PROMOTION)
    contacts = []
    for index in range(3):
        contact = ContactFactory(organization=organization, name=f"佐藤{index}")
        ConsentFactory(contact=contact)
        ContactListMembership.objects.create(contact_list=members_list, contact=contact)
        contacts.append(contact)
    owner = member(organization, Role.OWNER, username="a11y-owner")
    campaign = CampaignFactory(
        organization=organization, official_account=account, name="冬のセール", created_by=owner,
        status=CampaignStatus.COMPLETED, approved_by=owner, approved_at=timezone.now(),
        started_at=timezone.now() - timedelta(minutes=3), finished_at=timezone.now(),
    )
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=2)
    for metric, channel, count in [(Metric.TARGETED, "", 3), (Metric.SENT, "rcs", 2), (Metric.SENT, "sms", 1),
                                   (Metric.DELIVERED, "rcs", 2), (Metric.READ, "rcs", 1)]:
        CampaignCounter.objects.create(campaign=campaign, minute=minute, channel=channel, metric=metric, count=count)
    CampaignFactory(  # the dashboard shows its progress bar
        organization=organization, official_account=account, name="春のお知らせ", created_by=owner,
        status=CampaignStatus.RUNNING, approved_by=owner, approved_at=timezone.now(), started_at=timezone.now(),
    )
    conversation = Conversation.objects.create(organization=organization, official_account=account,
                                               contact=contacts[0], unread_count=1)
    ConversationMessage.objects.create(conversation=conversation, direction="in", channel="rcs",
                                       text="明日の予約を14時に変更できますか？")
    return {"organization": organization, "account": account, "list": members_list, "campaign": campaign,
            "conversation": conversation, "owner": owner}


def new_page(browser, live_server, lang):
    context = browser.new_context(viewport={"width": 1440, "height": 1000},
                                  locale="ja-JP" if lang == "ja" else "en-US")
    host = live_server.url.split("//", 1)[1].split(":")[0]
    context.add_cookies([{"name": "django_language", "value": lang, "domain": host, "path": "/"}])
    return context.new_page()


def sign_in(browser, live_server, lang, username="a11y-owner"):
    page = new_page(browser, live_server, lang)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click(".auth-card button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    return page


def shot(page, name):
    """The whole page, taken with a viewport as tall as the page so the sticky sidebar stays in place."""
    size = page.viewport_size
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(height, size["height"])})
    page.screenshot(path=screenshot_path(f"a11y-{name}"))
    page.set_viewport_size(size)


def axe_findings(page):
    """axe-core's violations of impact serious or critical, as readable lines. Polling (the inbox, a
    running monitor) is held first, so no swap lands while axe-core reads the page."""
    page.evaluate("document.addEventListener('htmx:beforeRequest', (event) => event.preventDefault(), true)")
    page.wait_for_load_state("networkidle")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    lines = []
    for violation in result["violations"]:
        if violation["impact"] not in BLOCKING:
            continue
        targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]][:6]
        lines.append(f"{violation['impact']} {violation['id']}: {violation['help']} -> {json.dumps(targets)}")
    return lines


def open_sign_in(page, live_server, world):
    page.goto(f"{live_server.url}/login/")


def open_dashboard(page, live_server, world):
    page.goto(f"{live_server.url}/")


def open_composer(page, live_server, world):
    page.goto(f"{live_server.url}/campaigns/new/")
    page.wait_for_selector("#preview-phone")
    page.wait_for_load_state("networkidle")


def open_composer_carousel(page, live_server, world):
    """The composer with more of its controls on show: a carousel, a card button and a reply chip."""
    open_composer(page, live_server, world)
    page.click("label.kind-tab:has(input[value=carousel])")
    page.click("button[name=op][value='add_button:0']")
    page.wait_for_selector("[name='carousel.cards[0].buttons[0].label']")
    page.click("button[name=op][value='add_chip']")
    page.wait_for_selector("[name='chips[0].label']")
    page.wait_for_load_state("networkidle")


def open_monitor(page, live_server, world):
    page.goto(f"{live_server.url}/campaigns/{world['campaign'].pk}/monitor/")
    page.wait_for_load_state("networkidle")


def open_contacts(page, live_server, world):
    page.goto(f"{live_server.url}/campaigns/contacts/")


def open_import_upload(page, live_server, world):
    page.goto(f"{live_server.url}/campaigns/contacts/import/")


def open_import_mapping(page, live_server, world, tmp_path):
    csv_path = tmp_path / "会員.csv"
    csv_path.write_bytes(CSV.encode("cp932"))
    page.goto(f"{live_server.url}/campaigns/contacts/import/")
    page.set_input_files("input[name=file]", str(csv_path))
    page.select_option("select[name=contact_list]", str(world["list"].pk))
    page.click("form.card button[type=submit]")
    page.wait_for_url("**/mapping/")


def open_inbox(page, live_server, world):
    page.goto(f"{live_server.url}/messaging/inbox/{world['conversation'].pk}/")
    page.wait_for_selector(".bubble.in")


PAGES = {
    "sign-in": open_sign_in,
    "dashboard": open_dashboard,
    "composer": open_composer,
    "composer-carousel": open_composer_carousel,
    "monitor": open_monitor,
    "contacts": open_contacts,
    "import-upload": open_import_upload,
    "import-mapping": open_import_mapping,
    "inbox": open_inbox,
}


@pytest.mark.parametrize("lang", ["ja", "en"])
@pytest.mark.parametrize("name", list(PAGES))
def test_a11y_page_has_no_serious_or_critical_axe_finding(browser, live_server, world, tmp_path, name, lang):
    if name == "sign-in":
        page = new_page(browser, live_server, lang)
    else:
        page = sign_in(browser, live_server, lang)
    opener = PAGES[name]
    if name == "import-mapping":
        opener(page, live_server, world, tmp_path)
    else:
        opener(page, live_server, world)
    assert page.locator("html").get_attribute("lang") == lang
    skip = {"ja": "メインコンテンツへ移動", "en": "Skip to main content"}[lang]
    assert page.locator("a.skip-link").text_content() == skip
    shot(page, f"{name}-{lang}")
    findings = axe_findings(page)
    page.context.close()
    assert not findings, f"axe-core on {name} ({lang}):\n" + "\n".join(findings)


def test_a11y_other_console_pages_have_no_serious_or_critical_axe_finding(browser, live_server, world):
    """The rest of the console in one walk (Japanese): lists, details, settings and administration."""
    from django.urls import reverse

    campaign, account = world["campaign"].pk, world["account"].pk
    urls = [reverse("campaigns:list"), reverse("campaigns:detail", args=[campaign]),
            reverse("contacts:detail", args=[world["conversation"].contact_id]), reverse("contacts:lists"),
            reverse("contacts:list_create"), reverse("contacts:opt_outs"), reverse("messaging:inbox"),
            reverse("messaging:inbox_quick_replies"), reverse("audit_log"), reverse("password_change"),
            reverse("accounts:official_list"), reverse("accounts:official_detail", args=[account]),
            reverse("accounts:fixed_menu", args=[account])]
    urls += [reverse(f"accounts:{name}") for name in ("members", "two_factor", "quiet_hours", "retention",
                                                      "test_numbers", "api_keys", "webhooks")]
    page = sign_in(browser, live_server, "ja")
    findings = []
    for url in urls:
        page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("networkidle")
        findings += [f"{url}: {line}" for line in axe_findings(page)]
    page.context.close()
    assert not findings, "axe-core:\n" + "\n".join(findings)


def focused(page):
    """A short description of the element that has the keyboard focus."""
    return page.evaluate(
        "(() => { const e = document.activeElement; return e ? "
        "(e.tagName + '#' + (e.id || '') + '[' + (e.name || '') + '=' + (e.value || '') + ']') : ''; })()"
    )


FOCUS_RING = """() => {
  const e = document.activeElement;
  const ring = (el) => { const s = getComputedStyle(el);
    return (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== "none"; };
  // A radio or file input drawn by its label shows the focus on the label (or the span after it).
  if (getComputedStyle(e).opacity === "0" || e.classList.contains("visually-hidden")) {
    return [e.nextElementSibling, e.closest("label")].some((el) => el && ring(el));
  }
  return ring(e);
}"""


def tab_to(page, selector, limit=150, key="Tab"):
    """Presses Tab (or ``key``) until the element matching ``selector`` has the focus, and checks that
    the focus can be seen there; fails after ``limit`` presses."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            assert page.evaluate(FOCUS_RING), f"the keyboard focus on {selector} cannot be seen"
            return
        page.keyboard.press(key)
    raise AssertionError(f"{key} never reached {selector}; the focus is on {focused(page)}")


def test_a11y_keyboard_only_composer_compose_and_preview(browser, live_server, world):
    page = sign_in(browser, live_server, "ja")
    page.goto(f"{live_server.url}/campaigns/new/")
    page.wait_for_selector("#preview-phone")

    tab_to(page, "input[name=name]")
    page.keyboard.type("キーボードだけのお知らせ")
    tab_to(page, "input[name=classification]")  # a radio group: Tab lands on the chosen one, arrows move
    for _ in range(3):
        if page.evaluate("document.activeElement.value") == "transaction":
            break
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    assert page.is_checked("input[name=classification][value=transaction]")
    tab_to(page, "textarea[name=text]")
    page.keyboard.type("様、ご予約の確認です。")
    page.keyboard.press("Home")
    # Back to the personalisation buttons above the builder; Enter inserts at the text's cursor.
    tab_to(page, "button.token[data-insert='{{name}}']", key="Shift+Tab")
    page.keyboard.press("Enter")
    assert page.input_value("textarea[name=text]") == "{{name}}様、ご予約の確認です。"
    tab_to(page, "textarea[name=sms_text]")
    page.keyboard.type("ご予約の確認です。")
    tab_to(page, f"input[name=audience_lists][value='{world['list'].pk}']")
    page.keyboard.press("Space")
    page.wait_for_selector("#audience-count .audience-total")

    # The +Message preview follows what was typed; the SMS preview is chosen with the keyboard too.
    page.wait_for_function("document.querySelector('#preview-phone').innerText.includes('ご予約の確認です')")
    assert "佐藤0様" in page.locator("#preview-phone").inner_text()
    tab_to(page, "input[name=preview_mode][value=rcs]")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector("#preview-phone .sms-bubble")
    assert "ご予約の確認です。" in page.locator("#preview-phone .sms-bubble").inner_text()
    shot(page, "keyboard-composer")

    tab_to(page, "button[name=action][value=save]", key="Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/campaigns/\d+/(edit/)?$"))
    campaign = Campaign.objects.get(name="キーボードだけのお知らせ")
    assert campaign.content == {"text": "{{name}}様、ご予約の確認です。"}
    assert campaign.sms_text == "ご予約の確認です。"
    page.context.close()


def test_a11y_keyboard_only_inbox_open_and_reply(browser, live_server, world):
    member(world["organization"], Role.OPERATOR, username="a11y-operator")
    page = sign_in(browser, live_server, "ja", username="a11y-operator")
    page.goto(f"{live_server.url}/messaging/inbox/")
    page.wait_for_selector("#conversation-list [data-conversation]")

    # The first Tab offers a way past the navigation.
    page.keyboard.press("Tab")
    tab_to(page, "a.skip-link", limit=1)
    assert page.locator("a.skip-link").bounding_box()["y"] >= 0  # shown on screen while focused
    page.keyboard.press("Enter")
    tab_to(page, f"#conversation-list [data-conversation='{world['conversation'].pk}'] a")
    page.keyboard.press("Enter")
    page.wait_for_selector(".bubble.in")
    tab_to(page, "#reply-text")
    page.keyboard.type("14時に変更しました。")
    tab_to(page, "#send-reply")
    page.keyboard.press("Enter")
    page.wait_for_selector(".bubble.out")
    assert "14時に変更しました。" in page.locator(".bubble.out").inner_text()
    assert page.input_value("#reply-text") == ""
    shot(page, "keyboard-inbox")
    assert ConversationMessage.objects.filter(conversation=world["conversation"], direction="out",
                                              text="14時に変更しました。").count() == 1
    page.context.close()
