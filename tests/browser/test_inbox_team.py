"""Browser test: the team inbox at 1440 px and 390 px, in Japanese. An operator finds a person by a
number typed in full-width digits, sees how long the oldest question has waited, inserts a quick
reply with the keyboard alone (/ in the empty reply, type to filter, arrow, Enter), reads the
contact panel, opts the person out through the confirmation dialog and then sees the warning in the
reply box; the colleague they assign the conversation to sees it under the bell.
Screenshots: test-output/screenshots/inbox-team-*.png.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import GatewayKind, Notification, Role
from campaigns.models import Contact
from messaging.gateways.base import NormalizedEvent
from messaging.inbox import inbound_apply
from messaging.models import Conversation, QuickReply
from tests.accounts.factories import (
    PASSWORD,
    GatewayAccountFactory,
    OrganizationFactory,
    approved_account,
    member,
)
from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path
from tests.campaigns.factories import ConsentFactory, ContactListFactory

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), NEEDS_CHROMIUM]


@pytest.fixture
def team_inbox():
    organization = OrganizationFactory(name="株式会社ブラウザ")
    rbm = GatewayAccountFactory(organization=organization, kind=GatewayKind.RBM)
    approved_account(organization, rcs_gateway=rbm, sms_gateway=None)
    now = timezone.now()
    for n, (phone, name, text, age) in enumerate([
        ("+819012345678", "山田花子", "明日の予約を14時に変更できますか？", timedelta(hours=2, minutes=10)),
        ("+818055556666", "", "駐車場はありますか？", timedelta(minutes=12)),
    ]):
        inbound_apply([NormalizedEvent(provider="rbm", event_id=f"msg:b{n}", kind="inbound_text", channel="rcs",
                                       phone=phone, text=text, gateway_id=rbm.pk, occurred_at=now - age, raw={})])
        if name:
            Contact.objects.filter(organization=organization, phone=phone).update(name=name)
    yamada = Contact.objects.get(organization=organization, phone="+819012345678")
    ConsentFactory(organization=organization, contact=yamada, wording_version="2026-04")
    ContactListFactory(organization=organization, name="渋谷店の会員").contacts.add(yamada)
    QuickReply.objects.create(organization=organization, title="営業時間", text="営業時間は10時〜19時です。")
    QuickReply.objects.create(organization=organization, title="予約変更OK", text="ご予約を14時に変更しました。")
    return {"organization": organization, "yamada": yamada,
            "operator": member(organization, Role.OPERATOR, username="browser-op"),
            "colleague": member(organization, Role.OPERATOR, username="browser-colleague")}


def _sign_in(browser, live_server, username, width):
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="ja-JP")
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form:has(input[name=password]) button[type=submit]")
    page.wait_for_load_state()
    return context, page


@pytest.mark.parametrize("width", [1440, 390])
def test_inbox_team_search_quick_reply_panel_opt_out_and_bell(browser, live_server, team_inbox, width):
    def shot(name):
        page.screenshot(path=screenshot_path(f"inbox-team-{width}-{name}"), full_page=True)

    context, page = _sign_in(browser, live_server, "browser-op", width)
    page.goto(f"{live_server.url}/messaging/inbox/")
    assert "最も長い返信待ち: 2時間" in page.inner_text("#oldest-waiting") and "山田花子" in page.inner_text("#oldest-waiting")
    page.fill("#inbox-search", "０９０－１２３４")
    page.press("#inbox-search", "Enter")
    page.wait_for_url("**q=*")
    assert page.locator("#conversation-list [data-conversation]").count() == 1
    shot("01-search")
    page.click("#conversation-list [data-conversation] a")
    page.wait_for_selector(".bubble.in")

    # A quick reply with the keyboard alone: "/" in the empty reply opens the picker.
    page.focus("#reply-text")
    page.keyboard.press("/")
    page.wait_for_selector("#quick-reply-panel:not([hidden])")
    page.keyboard.type("予約")
    assert page.locator("#quick-reply-options li:not([hidden])").count() == 1
    page.keyboard.press("Enter")
    assert page.input_value("#reply-text") == "ご予約を14時に変更しました。"
    assert page.evaluate("document.activeElement.id") == "reply-text"
    panel = page.inner_text("#contact-panel")
    assert "広告配信に同意済み" in panel and "渋谷店の会員" in panel and "2026-04" in panel
    shot("02-thread")

    # Opting out asks first; cancelling changes nothing.
    page.click("#open-opt-out")
    page.wait_for_selector("#opt-out-dialog[open]")
    shot("03-opt-out-dialog")
    page.click("#opt-out-dialog button:not([type=submit])")
    assert Contact.objects.get(pk=team_inbox["yamada"].pk).opted_out_at is None
    page.click("#open-opt-out")
    page.uncheck("#opt-out-dialog input[name=send_confirmation]")
    page.click("#confirm-opt-out")
    page.wait_for_selector("#opted-out-warning")
    assert Contact.objects.get(pk=team_inbox["yamada"].pk).opt_out_method == "console"
    assert "配信停止しました" in page.inner_text("#opted-out-warning")
    shot("04-opted-out")

    # Assigning a colleague notifies them under the bell.
    with page.expect_navigation():
        page.select_option("#assign-user", str(team_inbox["colleague"].pk))
    conversation = Conversation.objects.get(contact=team_inbox["yamada"])
    assert conversation.assigned_to == team_inbox["colleague"]
    context.close()
    context, page = _sign_in(browser, live_server, "browser-colleague", width)
    assert page.inner_text("#notification-bell .bell-count") == "1"
    page.click("#notification-bell")
    page.wait_for_selector(".notification-list")
    shot("05-notifications")
    page.click(".notification-list li a")
    page.wait_for_url(f"**/messaging/inbox/{conversation.pk}/")
    assert Notification.objects.get(recipient=team_inbox["colleague"]).read_at is not None
    assert page.locator("#notification-bell .bell-count").count() == 0
    context.close()
