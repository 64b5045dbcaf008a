"""Browser test: a marketer launches an approved campaign against the sandbox carrier — the
confirmation states the audience size — and watches the monitor's progress bar reach 100% and the
funnel fill as a real Celery worker sends and the sandbox's signed receipts come back.
Screenshots: test-output/screenshots/launch-*.png."""

import pytest

from accounts.models import Role
from campaigns.models import CampaignStatus
from tests.accounts.factories import PASSWORD, MembershipFactory, UserFactory
from tests.browser.conftest import NEEDS_CHROMIUM, screenshot_path
from tests.messaging.conftest import sandbox, sandbox_server  # noqa: F401
from tests.messaging.engine import engine, receiver, worker  # noqa: F401

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.engine, pytest.mark.django_db(transaction=True), NEEDS_CHROMIUM]


def test_marketer_launches_against_the_sandbox_and_watches_the_monitor_fill(browser, live_server, engine, worker):
    engine.sandbox.configure(profile_mix={"android_plus_message": 80, "iphone_no_app": 20})
    audience = engine.audience(300, name="browser-launch")
    campaign = engine.campaign(audience)  # approved, transactional
    marketer = UserFactory(username="browser-launcher")
    MembershipFactory(organization=engine.organization, user=marketer, role=Role.MARKETER)
    worker()

    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="ja-JP")
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "browser-launcher")
    page.fill("input[name=password]", PASSWORD)
    page.click("form:has(input[name=password]) button[type=submit]")
    page.wait_for_load_state()

    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    page.click("[data-open-dialog=launch-dialog]")
    dialog = page.locator("#launch-dialog")
    dialog.wait_for(state="visible")
    assert dialog.locator(".launch-count .value").inner_text() == "300"
    page.screenshot(path=screenshot_path("launch-01-confirm"))
    dialog.locator("button[type=submit]").last.click()

    page.wait_for_url(f"{live_server.url}/campaigns/{campaign.pk}/monitor/")
    page.wait_for_function(
        "document.querySelector('[role=progressbar]').getAttribute('aria-valuenow') === '100.0'", timeout=60_000
    )
    page.wait_for_function("!document.querySelector('#live').hasAttribute('hx-trigger')", timeout=90_000)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED
    funnel = page.locator(".funnel-row").all_inner_texts()
    assert any("300" in row for row in funnel)
    page.screenshot(path=screenshot_path("launch-02-monitor-finished"), full_page=True)
    context.close()
