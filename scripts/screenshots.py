"""Screenshots of the main pages for the README, taken from a running demo (`make run`).

Usage: .venv/bin/python scripts/screenshots.py [http://127.0.0.1:8000] [docs/screenshots]
Signs in as the demo owner and saves one PNG per page, in Japanese (the default language): the
viewport at 1360×900, plus the dashboard and an inbox thread at phone width (390×844, `phone-*`).
Launch the demo campaign, clone it into a draft (for the composer) and let a few replies arrive
first, so the pages show data.
"""

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
OUT = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/screenshots")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]

PAGES = [
    ("dashboard", "/"),
    ("official-accounts", "/accounts/official/"),
    ("campaigns", "/campaigns/"),
    ("calendar", "/campaigns/calendar/"),
    ("contacts", "/campaigns/contacts/"),
    ("inbox", "/messaging/inbox/"),
    ("audit-log", "/audit/"),
    ("api-keys", "/accounts/api-keys/"),
]


def first_link(page, list_path, selector):
    """The first link on ``list_path`` matching ``selector`` whose address has an id in it."""
    page.goto(f"{BASE}{list_path}")
    hrefs = [a.get_attribute("href") for a in page.query_selector_all(selector)]
    return next((h for h in hrefs if any(ch.isdigit() for ch in h)), None)


def shoot(page, name, path):
    page.goto(f"{BASE}{path}")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=False)


def sign_in(browser, viewport):
    page = browser.new_page(viewport=viewport, locale="ja-JP")
    page.goto(f"{BASE}/login/")
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", "plusmessage-demo")
    page.click("form:has(input[name=password]) button[type=submit]")
    page.wait_for_url(f"{BASE}/")
    return page


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = sign_in(browser, {"width": 1360, "height": 900})
        for name, path in PAGES:
            shoot(page, name, path)
        # The pages reached from a list: the first official account (with its fixed-menu editor),
        # a sent campaign's page and monitor, and a draft in the composer (only a draft is editable).
        campaign_link = "a[href^='/campaigns/'][href$='/']"
        account = first_link(page, "/accounts/official/", "a[href*='/accounts/official/'][href$='/']")
        if account:
            shoot(page, "official-account", account)
        for status in ("completed", "running"):
            campaign = first_link(page, f"/campaigns/?status={status}", campaign_link)
            if campaign:
                shoot(page, "campaign", campaign)
                shoot(page, "campaign-monitor", f"{campaign}monitor/")
                break
        draft = first_link(page, "/campaigns/?status=draft", campaign_link)
        shoot(page, "campaign-edit", f"{draft}edit/" if draft else "/campaigns/new/")
        conversation = first_link(page, "/messaging/inbox/", "a[href^='/messaging/inbox/'][href$='/']")
        page.close()

        # Phone width: the dashboard with the menu drawer closed, and one inbox thread.
        phone = sign_in(browser, {"width": 390, "height": 844})
        shoot(phone, "phone-dashboard", "/")
        if conversation:
            shoot(phone, "phone-inbox-thread", conversation)
        browser.close()


if __name__ == "__main__":
    main()
