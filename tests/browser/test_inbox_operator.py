"""Browser test: an operator answers a reply. The person's message arrives from the sandbox carrier
as a signed webhook, a real Celery worker applies it, and it appears in the open inbox without a
reload; the operator opens it (the read receipt goes back), inserts a quick reply, sends, and sees
the answer's delivery status change in the thread. Screenshots: test-output/screenshots/inbox-*.png.
"""


import pytest

from accounts.models import Role
from messaging.models import Conversation, ConversationMessage, Delivery, DeliveryStatus, QuickReply
from messaging.runs import campaign_start
from tests.accounts.factories import PASSWORD, MembershipFactory, UserFactory
from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path
from tests.messaging.conftest import sandbox, sandbox_server  # noqa: F401
from tests.messaging.engine import engine, receiver, wait_until, worker  # noqa: F401

pytest.importorskip("playwright.sync_api")


pytestmark = [
    pytest.mark.browser,
    pytest.mark.engine,
    pytest.mark.django_db(transaction=True),
    NEEDS_CHROMIUM,
]



def shot(page, name):
    page.screenshot(path=screenshot_path(f"inbox-{name}"), full_page=True)


def test_inbox_operator_answers_a_reply_in_the_browser(browser, live_server, engine, worker):
    sandbox = engine.sandbox
    audience = engine.audience(1, name="browser-inbox")
    contact = audience.contacts.get()
    sandbox.configure(profile_overrides={contact.phone: "android_plus_message"})
    campaign = engine.campaign(audience)
    operator = UserFactory(username="browser-operator")
    MembershipFactory(organization=engine.organization, user=operator, role=Role.OPERATOR)
    QuickReply.objects.create(organization=engine.organization, title="予約変更OK",
                              text="ご予約を14時に変更しました。ご来店をお待ちしております。")
    worker()
    campaign_start(campaign)
    wait_until(lambda: Delivery.objects.filter(campaign=campaign, status__gte=DeliveryStatus.DELIVERED).exists(),
               timeout=30, interval=0.2)

    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="ja-JP")
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "browser-operator")
    page.fill("input[name=password]", PASSWORD)
    page.click("form:has(input[name=password]) button[type=submit]")
    page.wait_for_load_state()
    page.click("nav.nav a[href='/messaging/inbox/']")
    page.wait_for_selector("#conversation-list .empty-state")
    shot(page, "01-empty")

    # The person answers on their phone; the conversation shows up without reloading the page.
    sandbox.post("replies", {"phone": contact.phone, "trigger": "now",
                             "reply": {"type": "text", "text": "明日の予約を14時に変更できますか？"}})
    page.wait_for_selector("#conversation-list [data-conversation] .unread-badge", timeout=20_000)
    shot(page, "02-new-reply")

    page.click("#conversation-list [data-conversation] a")
    page.wait_for_selector(".bubble.in")
    assert "明日の予約を14時に変更できますか？" in page.locator(".bubble.in").inner_text()
    shot(page, "03-thread")
    inbound = ConversationMessage.objects.get(direction="in")
    events = wait_until(lambda: sandbox.get(f"agent-events/{contact.phone}")["events"], timeout=20)
    assert events[0]["event_type"] == "READ" and events[0]["message_id"] == inbound.provider_message_id

    page.click("#quick-reply-toggle")  # the picker in the reply box
    page.click("#quick-reply-options li.quick-reply")
    assert page.input_value("#reply-text").startswith("ご予約を14時に変更しました")
    page.click("#send-reply")
    page.wait_for_selector(".bubble.out")
    assert page.input_value("#reply-text") == ""
    # the thread polls: the answer's status moves on to delivered (or read) by itself
    page.wait_for_selector(".bubble.out .delivery-status[data-status='30'], .bubble.out .delivery-status[data-status='40']",
                           timeout=30_000)
    shot(page, "04-answered")
    got = [m for m in sandbox.inbox(contact.phone) if m["text"].startswith("ご予約を14時に変更しました")]
    assert len(got) == 1 and got[0]["channel"] == "rcs" and got[0]["count"] == 1

    page.click("#mark-done")
    page.wait_for_url("**/messaging/inbox/")
    assert Conversation.objects.get().status == "done"
    shot(page, "05-done")
    context.close()
