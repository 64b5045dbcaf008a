"""Browser test (Playwright driving Debian's chromium): an owner invites a marketer by e-mail; the
marketer opens the link from the message the file e-mail backend wrote (as `make run` does under
var/mail/), chooses a username and a password, signs in, enrols an authenticator app (the test plays
the app), signs out and signs in again with the second factor. Screenshots go to
test-output/screenshots/."""

import re

import pytest

from accounts.models import Membership, Role
from tests.accounts.factories import PASSWORD, OrganizationFactory, member
from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path
from tests.browser.test_two_factor import app_code, sign_out

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    NEEDS_CHROMIUM,
]

MARKETER_PASSWORD = "Sakura-saku-2026-haru"


def shot(page, name):
    page.screenshot(path=screenshot_path(f"invitation-{name}"), full_page=True)


def new_page(browser):
    return browser.new_context(viewport={"width": 1366, "height": 900}, locale="ja-JP").new_page()


def mailed_link(mail_dir, live_server_url) -> str:
    """The invitation link, read from the messages the file backend wrote."""
    text = "\n".join(path.read_text(encoding="utf-8") for path in sorted(mail_dir.glob("*.log")))
    assert "To: hanako@example.jp" in text
    found = re.search(re.escape(live_server_url) + r"/accounts/invitations/[A-Za-z0-9_\-]+/", text)
    assert found, text[:2000]
    return found.group(0)


def test_invitation_owner_invites_a_marketer_who_accepts_from_the_mail_file_and_signs_in_with_two_factor(
    browser, live_server, settings, tmp_path
):
    mail_dir = tmp_path / "mail"
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(mail_dir)
    org = OrganizationFactory(name="ブラウザ商事")
    member(org, Role.OWNER, username="team-owner")

    owner = new_page(browser)
    owner.goto(f"{live_server.url}/login/")
    owner.fill("input[name=username]", "team-owner")
    owner.fill("input[name=password]", PASSWORD)
    owner.click(".auth-card button[type=submit]")
    owner.wait_for_load_state()
    owner.goto(f"{live_server.url}/accounts/members/")
    owner.fill("#invite-form input[name=email]", "hanako@example.jp")
    owner.select_option("#invite-form select[name=role]", Role.MARKETER)
    shot(owner, "01-invite")
    owner.click("#invite-form button[type=submit]")
    owner.wait_for_selector("#invitations-table >> text=hanako@example.jp")
    assert owner.locator(".flash-success").count() == 1
    shot(owner, "02-pending")

    link = mailed_link(mail_dir, live_server.url)
    marketer = new_page(browser)
    marketer.goto(link)
    assert "ブラウザ商事" in marketer.locator("#invitation").inner_text()
    marketer.fill("input[name=username]", "hanako")
    marketer.fill("input[name=password1]", "password1234")  # too common: refused beside the field
    marketer.fill("input[name=password2]", "password1234")
    marketer.click("#invitation button[type=submit]")
    marketer.wait_for_selector("#id_password1_errors")
    assert "一般的すぎます" in marketer.locator("#id_password1_errors").inner_text()
    shot(marketer, "03-weak-password")
    marketer.fill("input[name=password1]", MARKETER_PASSWORD)
    marketer.fill("input[name=password2]", MARKETER_PASSWORD)
    marketer.click("#invitation button[type=submit]")
    marketer.wait_for_url(f"{live_server.url}/login/")
    assert marketer.locator(".flash-success").count() == 1
    shot(marketer, "04-account-ready")

    marketer.fill("input[name=username]", "hanako")
    marketer.fill("input[name=password]", MARKETER_PASSWORD)
    marketer.click(".auth-card button[type=submit]")
    marketer.wait_for_url(f"{live_server.url}/")
    assert marketer.locator(".user-name").inner_text() == "hanako"
    shot(marketer, "05-signed-in")
    assert Membership.objects.get(organization=org, user__username="hanako").role == Role.MARKETER

    owner.goto(f"{live_server.url}/accounts/members/")
    assert "hanako@example.jp" not in owner.locator("#invitations-table").inner_text()
    assert "hanako" in owner.locator("#members-table").inner_text()

    # The new marketer switches on two-factor sign-in, then signs in with it.
    marketer.click("details.user-menu summary")
    marketer.click("details.user-menu a[href$='/accounts/two-factor/']")
    marketer.click("a[href$='/accounts/two-factor/setup/']")
    secret = marketer.inner_text("#two-factor-secret")
    marketer.fill("input[name=otp_code]", app_code(secret))
    marketer.click("#two-factor-setup-form button[type=submit]")
    assert marketer.locator("#recovery-codes li").count() == 10
    marketer.click("#recovery-codes-done")
    shot(marketer, "06-two-factor-on")
    sign_out(marketer)
    marketer.fill("input[name=username]", "hanako")
    marketer.fill("input[name=password]", MARKETER_PASSWORD)
    marketer.click(".auth-card button[type=submit]")
    marketer.wait_for_url("**/login/two-factor/")
    marketer.fill("input[name=otp_code]", app_code(secret, 30))
    marketer.click("#two-factor-verify-form button[type=submit]")
    marketer.wait_for_url(f"{live_server.url}/")
    assert marketer.locator(".user-name").inner_text() == "hanako"
    shot(marketer, "07-signed-in-with-two-factor")
