"""Browser test at phone width (390 px, Playwright driving Debian's chromium): the sidebar is a drawer
behind a menu button that says whether it is open, takes the focus and closes with Escape; the
language switch stays on one line; nothing is wider than the screen; the inbox shows the list, then
the thread alone with a link back. At 1440 px the sidebar is simply there. Screenshots:
test-output/screenshots/mobile-*.png."""

import pytest
from django.utils import timezone

from accounts.models import Role
from campaigns.models import Contact
from messaging.models import Conversation, ConversationMessage, MessageDirection
from tests.accounts.factories import PASSWORD, OrganizationFactory, approved_account, member
from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    NEEDS_CHROMIUM,
]

PHONE = {"width": 390, "height": 844}


def shot(page, name):
    page.screenshot(path=screenshot_path(f"mobile-{name}"), full_page=True)


def sign_in(browser, live_server, username, viewport):
    page = browser.new_context(viewport=viewport, locale="ja-JP").new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click(".auth-card button[type=submit]")
    page.wait_for_load_state()
    return page


WIDER_THAN_SCREEN = """() => [...document.querySelectorAll('body *')].filter(element => {
    const box = element.getBoundingClientRect();
    if (box.width === 0 || box.right <= window.innerWidth + 1) return false;
    for (let up = element.parentElement; up; up = up.parentElement) {  // scrolling inside a box is fine
        if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(up).overflowX)) return false;
    }
    return getComputedStyle(element).visibility !== 'hidden';
}).map(element => element.tagName + '.' + element.className + ' ' + Math.round(element.getBoundingClientRect().right))"""


def fits_the_screen(page) -> bool:
    wider = page.evaluate(WIDER_THAN_SCREEN)
    assert not wider, wider
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def one_line(page, selector) -> bool:
    """Every element matching ``selector`` sits on the same line, each itself one line high."""
    boxes = [element.bounding_box() for element in page.query_selector_all(selector)]
    return len(boxes) > 1 and len({round(box["y"]) for box in boxes}) == 1 and all(box["height"] < 40 for box in boxes)


def focus_in_drawer(page) -> bool:
    return page.evaluate("!!document.activeElement.closest('#sidebar')")


@pytest.fixture
def operator_with_a_conversation():
    organization = OrganizationFactory(name="モバイル商事")
    account = approved_account(organization)
    contact = Contact.objects.create(organization=organization, phone="+819012345678", name="山田 花子")
    conversation = Conversation.objects.create(organization=organization, official_account=account, contact=contact,
                                               unread_count=1, last_message_at=timezone.now())
    ConversationMessage.objects.create(conversation=conversation, direction=MessageDirection.INBOUND, channel="rcs",
                                       text="予約を14時に変更できますか？")
    Contact.objects.bulk_create([Contact(organization=organization, phone=f"+8180{index:08d}", name=f"会員{index:04d}")
                                 for index in range(1, 1009)])
    member(organization, Role.OPERATOR, username="mobile-operator")
    return conversation


def test_phone_width_drawer_navigation_and_inbox_one_pane_at_a_time(browser, live_server,
                                                                     operator_with_a_conversation):
    page = browser.new_context(viewport=PHONE, locale="ja-JP").new_page()
    page.goto(f"{live_server.url}/login/")
    assert one_line(page, ".bare-top .lang-switcher .lang") and fits_the_screen(page)
    shot(page, "01-sign-in")

    page = sign_in(browser, live_server, "mobile-operator", PHONE)
    toggle = page.get_by_role("button", name="メニュー", exact=True)  # named even where only the icon shows
    drawer = page.locator("#sidebar")
    assert toggle.is_visible() and toggle.get_attribute("aria-expanded") == "false"
    assert toggle.get_attribute("aria-controls") == "sidebar"
    assert not drawer.is_visible()
    assert one_line(page, ".topbar .lang-switcher .lang") and fits_the_screen(page)
    shot(page, "02-dashboard")

    # The menu button opens the drawer and moves the focus into it; Escape closes it and gives the
    # focus back to the button.
    toggle.click()
    page.wait_for_function("document.getElementById('sidebar').getBoundingClientRect().left >= 0")
    assert drawer.is_visible() and toggle.get_attribute("aria-expanded") == "true"
    assert focus_in_drawer(page)
    shot(page, "03-drawer-open")
    page.keyboard.press("Tab")
    assert focus_in_drawer(page)
    page.keyboard.press("Escape")
    page.wait_for_function("getComputedStyle(document.getElementById('sidebar')).visibility === 'hidden'")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert page.evaluate("document.activeElement.classList.contains('nav-toggle')")

    # The close button and a tap outside close it too.
    toggle.click()
    page.locator(".nav-close").click()
    page.wait_for_function("getComputedStyle(document.getElementById('sidebar')).visibility === 'hidden'")
    toggle.click()
    page.mouse.click(370, 400)  # the backdrop, right of the drawer
    page.wait_for_function("getComputedStyle(document.getElementById('sidebar')).visibility === 'hidden'")

    # Navigate through the drawer to the inbox: the list alone, then the thread alone with a way back.
    toggle.click()
    page.locator("#sidebar nav a[href='/messaging/inbox/']").click()
    page.wait_for_url("**/messaging/inbox/")
    assert not drawer.is_visible() and page.locator(".nav-toggle").get_attribute("aria-expanded") == "false"
    assert page.locator(".inbox-list").is_visible() and not page.locator(".inbox-thread").is_visible()
    assert fits_the_screen(page)
    shot(page, "04-inbox-list")
    page.locator(".conv-list a", has_text="山田 花子").click()
    page.wait_for_url(f"**/messaging/inbox/{operator_with_a_conversation.pk}/")
    assert page.locator(".inbox-thread").is_visible() and not page.locator(".inbox-list").is_visible()
    assert page.get_by_text("予約を14時に変更できますか？").is_visible()
    assert fits_the_screen(page)
    shot(page, "05-inbox-thread")
    page.locator(".inbox-back").click()
    page.wait_for_url("**/messaging/inbox/")
    assert page.locator(".inbox-list").is_visible()

    # The other pages an operator reaches through the drawer fit the screen too (tables scroll inside
    # their own box).
    for label in ("キャンペーン", "公式アカウント", "連絡先"):
        page.locator(".nav-toggle").click()
        page.locator("#sidebar nav a", has_text=label).click()
        page.wait_for_load_state()
        assert fits_the_screen(page), label
    assert page.locator(".pager-position").inner_text() == "1–50 / 1,009件"
    page.get_by_role("link", name="次へ").click()
    page.wait_for_load_state()
    assert page.locator(".pager-position").inner_text() == "51–100 / 1,009件" and fits_the_screen(page)
    shot(page, "06-contacts-page-2")

    # At desktop width the sidebar is there and the menu button is not; the inbox shows both panes.
    desktop = sign_in(browser, live_server, "mobile-operator", {"width": 1440, "height": 900})
    desktop.goto(f"{live_server.url}/messaging/inbox/{operator_with_a_conversation.pk}/")
    assert desktop.locator("#sidebar").is_visible() and not desktop.locator(".nav-toggle").is_visible()
    assert desktop.locator(".inbox-list").is_visible() and desktop.locator(".inbox-thread").is_visible()
    assert not desktop.locator(".inbox-back").is_visible()
    desktop.screenshot(path=screenshot_path("mobile-07-desktop-inbox"), full_page=True)
