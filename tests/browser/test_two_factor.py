"""Browser tests of two-factor sign-in (Playwright driving Debian's chromium): a member enrols an
authenticator app from the QR code page (the test plays the app: it reads the secret shown as text
and computes the code with django_otp.oath), signs out and signs in with the second factor; and a
member whose organization makes it mandatory is taken to set-up after the password step, saves
the recovery codes and later signs in with one. Screenshots go to test-output/screenshots/."""

import time
from base64 import b32decode

import pytest
from django_otp.oath import TOTP

from accounts.models import Role
from accounts.two_factor import organization_two_factor_set, totp_device_pending, totp_enrol
from audit.models import AuditEvent
from tests.accounts.factories import PASSWORD, OrganizationFactory, member
from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    NEEDS_CHROMIUM,
]


def shot(page, name):
    page.screenshot(path=screenshot_path(f"two-factor-{name}"), full_page=True)


def app_code(secret_text: str, offset_seconds: int = 0) -> str:
    """What an authenticator app shows for the secret on the set-up page (RFC 6238, 30 s, 6 digits).

    ``offset_seconds=30`` gives the next window's code: django-otp accepts one step of drift and
    refuses a code from a window already used (at enrolment), so signing in right after set-up
    needs the next one.
    """
    secret = secret_text.replace(" ", "").upper()
    key = b32decode(secret + "=" * (-len(secret) % 8))
    totp = TOTP(key)
    totp.time = time.time() + offset_seconds
    return f"{totp.token():06d}"


def new_page(browser):
    return browser.new_context(viewport={"width": 1280, "height": 900}, locale="ja-JP").new_page()


def password_step(page, live_server, username):
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click(".auth-card button[type=submit]")
    page.wait_for_load_state()


def sign_out(page):
    page.click("details.user-menu summary")
    page.click("details.user-menu form button[type=submit]")
    page.wait_for_url("**/login/")


def test_two_factor_member_enrols_signs_out_and_signs_in_with_the_app(browser, live_server):
    org = OrganizationFactory(name="二要素商事")
    member(org, Role.MARKETER, username="totp-marketer")
    page = new_page(browser)

    password_step(page, live_server, "totp-marketer")
    page.wait_for_url(f"{live_server.url}/")  # no second factor yet: the password alone signs in
    page.click("details.user-menu summary")
    page.click("details.user-menu a[href$='/accounts/two-factor/']")
    page.click("a[href$='/accounts/two-factor/setup/']")
    assert page.locator("#two-factor-qr svg").count() == 1
    secret = page.inner_text("#two-factor-secret")
    shot(page, "01-set-up")
    page.fill("input[name=otp_code]", app_code(secret))
    page.click("#two-factor-setup-form button[type=submit]")
    assert page.locator("#recovery-codes li").count() == 10
    shot(page, "02-recovery-codes")
    page.click("#recovery-codes-done")
    assert page.locator("#my-two-factor .badge-ok").count() == 1

    sign_out(page)
    password_step(page, live_server, "totp-marketer")
    page.wait_for_url("**/login/two-factor/")
    assert "二要素認証" in page.inner_text("h1")
    shot(page, "03-second-step")
    page.fill("input[name=otp_code]", app_code(secret, 30))
    page.click("#two-factor-verify-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("details.user-menu .user-name").inner_text() == "totp-marketer"
    assert AuditEvent.objects.filter(action="two_factor.enrolled", organization=org).count() == 1


def test_two_factor_mandatory_member_sets_up_and_later_signs_in_with_a_recovery_code(browser, live_server):
    org = OrganizationFactory(name="必須商事")
    owner = member(org, Role.OWNER, username="policy-owner")
    device = totp_device_pending(owner)
    totp = TOTP(device.bin_key)
    totp_enrol(owner, device, f"{totp.token():06d}")
    organization_two_factor_set(org, True, actor=owner)
    member(org, Role.OPERATOR, username="recovery-operator")
    page = new_page(browser)

    password_step(page, live_server, "recovery-operator")
    page.wait_for_url("**/accounts/two-factor/setup/")  # taken to set-up, not into the console
    shot(page, "11-mandatory-set-up")
    page.goto(f"{live_server.url}/messaging/inbox/")
    assert "/login/" in page.url  # not signed in until enrolled
    page.goto(f"{live_server.url}/accounts/two-factor/setup/")
    secret = page.inner_text("#two-factor-secret")
    page.fill("input[name=otp_code]", app_code(secret))
    page.click("#two-factor-setup-form button[type=submit]")
    codes = page.locator("#recovery-codes li code").all_inner_texts()
    assert len(codes) == 10
    page.click("#recovery-codes-done")
    page.wait_for_url(f"{live_server.url}/")

    sign_out(page)
    password_step(page, live_server, "recovery-operator")
    page.wait_for_url("**/login/two-factor/")
    page.fill("input[name=otp_code]", codes[0])
    page.click("#two-factor-verify-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator(".flash-warning").count() == 1  # tells how many codes are left
    shot(page, "12-signed-in-with-recovery-code")
    event = AuditEvent.objects.get(action="two_factor.recovery_code_used", organization=org)
    assert event.actor_label == "recovery-operator" and event.details == {"recovery_codes_left": 9}
