"""Browser tests (issue 18, points 8 and 9), in Japanese at 1440 px and at 390 px (a phone):

- on the sign-in page, Enter in the name or the password field signs in; the language stays Japanese
  (the language switch is never the form's default button);
- the user menu shows that it opens (a caret; aria-expanded follows it, Escape closes it);
- a marketer reads 「編集は管理者のみ」 where an admin would find the fixed menu's controls;
- ReDoc and Swagger UI render from this server alone (no request leaves it) and lead back to the console.

Screenshots go to test-output/screenshots/ (sign-in-enter-*, user-menu-*, admin-only-*, api-docs-*).
"""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from tests.accounts.factories import PASSWORD, OrganizationFactory, approved_account, member
from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), NEEDS_CHROMIUM]

WIDTHS = {"desktop": 1440, "phone": 390}


def japanese_page(browser, live_server, width):
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="ja-JP")
    host = urlsplit(live_server.url).hostname
    context.add_cookies([{"name": "django_language", "value": "ja", "domain": host, "path": "/"}])
    return context.new_page()


def sign_in(browser, live_server, username, width):
    page = japanese_page(browser, live_server, width)
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{live_server.url}/")
    return page


def shot(page, name, full_page=True):
    page.screenshot(path=screenshot_path(name), full_page=full_page)


@pytest.fixture
def org():
    return OrganizationFactory(name="記録商事")


@pytest.mark.parametrize("field", ["username", "password"])
@pytest.mark.parametrize("size", list(WIDTHS))
def test_enter_on_the_sign_in_page_signs_in_and_keeps_the_language(browser, live_server, org, size, field):
    user = member(org, role=Role.MARKETER)
    page = japanese_page(browser, live_server, WIDTHS[size])
    page.goto(f"{live_server.url}/login/")
    assert page.locator("html").get_attribute("lang") == "ja"
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    if field == "username":
        shot(page, f"sign-in-enter-{size}")
    page.press(f"input[name={field}]", "Enter")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("html").get_attribute("lang") == "ja"
    assert page.locator("#user-menu summary").is_visible()
    page.context.close()


@pytest.mark.parametrize("size", list(WIDTHS))
def test_the_user_menu_shows_that_it_opens(browser, live_server, org, size):
    user = member(org, role=Role.MARKETER)
    page = sign_in(browser, live_server, user.username, WIDTHS[size])
    summary = page.locator("#user-menu summary")
    assert summary.locator("svg.caret").is_visible()
    assert summary.get_attribute("aria-expanded") == "false"
    assert not page.get_by_role("button", name="ログアウト").is_visible()

    summary.click()
    expect(summary).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#user-menu-items")).to_be_visible()
    shot(page, f"user-menu-{size}")

    page.keyboard.press("Escape")
    expect(summary).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#user-menu-items")).to_be_hidden()
    expect(summary).to_be_focused()
    page.context.close()


@pytest.mark.parametrize("size", list(WIDTHS))
def test_a_marketer_reads_that_only_admins_edit_the_fixed_menu(browser, live_server, org, size):
    account = approved_account(org, display_name="記録ストア")
    user = member(org, role=Role.MARKETER)
    page = sign_in(browser, live_server, user.username, WIDTHS[size])
    page.goto(f"{live_server.url}/accounts/official/{account.pk}/menu/")
    note = page.locator(".admin-only")
    assert note.is_visible() and "編集は管理者のみ" in note.inner_text()
    assert page.get_by_role("button", name="項目を追加").count() == 0
    shot(page, f"admin-only-fixed-menu-{size}")
    page.context.close()


@pytest.mark.parametrize("size", list(WIDTHS))
def test_the_api_docs_load_nothing_from_the_internet_and_lead_back(browser, live_server, org, size):
    user = member(org, role=Role.ADMIN)
    page = sign_in(browser, live_server, user.username, WIDTHS[size])
    ours = urlsplit(live_server.url).netloc
    elsewhere = []

    def refuse_elsewhere(route):
        if urlsplit(route.request.url).netloc != ours:
            elsewhere.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", refuse_elsewhere)
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server.url}/api/v1/redoc/")
    page.wait_for_selector(".api-content h1")  # ReDoc has read the schema and rendered it
    shot(page, f"api-docs-redoc-{size}", full_page=False)  # the whole reference is megabytes
    page.goto(f"{live_server.url}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .opblock")
    shot(page, f"api-docs-swagger-{size}", full_page=False)
    assert elsewhere == []
    # the only thing the page's policy refuses is ReDoc's logo from its CDN; nothing the docs need
    assert all("cdn.redoc.ly" in error for error in errors), errors

    page.click("#docs-back")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("#user-menu").is_visible()
    page.context.close()
